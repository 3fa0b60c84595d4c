"""How much of an AUC is the track and how much is rounding: runs under sub-visible input noise.

Two CPUs never compute a network to the last bit (other SIMD widths, other reduction orders, other
INT8 kernels), and a tracker feeds each frame's box into the next frame's crop. One frame's
1e-6 difference can therefore choose another online template or another look-alike, and the two
runs of one clip part for good. So a single run's AUC is one draw: measured here, the bundled
model's sample clip scored between 64.8 and 71.0 over eight draws (docs/arm64_portability.md).

``RoundingNoise`` wraps an engine and adds uniform noise of at most ``GREY_LEVELS`` grey levels
(1/1000 of one step of an 8-bit pixel, far below anything a camera resolves) to every search
crop. Each seed is one such draw; the spread over seeds is what another CPU may show, and the
mean over seeds is the number to compare models by.
"""

from __future__ import annotations

import numpy as np

from edge.engines.base import EngineOutput

GREY_LEVELS = 1e-3


class RoundingNoise:
    """An ``Engine`` whose search crops carry +-``grey_levels`` of seeded uniform noise."""

    def __init__(self, engine, seed: int, grey_levels: float = GREY_LEVELS) -> None:
        self.engine = engine
        self.meta = engine.meta
        self.name = f"{engine.name}+noise{seed}"
        # In the normalised input one grey level is 1 / (255 * std) per channel.
        std = np.asarray(engine.meta.std, dtype=np.float64)
        self._amplitude = (grey_levels / (255.0 * std)).astype(np.float32).reshape(1, 3, 1, 1)
        self._rng = np.random.default_rng(seed)

    def set_templates(self, template: np.ndarray, online_template: np.ndarray) -> None:
        self.engine.set_templates(template, online_template)

    def run(self, search: np.ndarray) -> EngineOutput:
        noise = self._rng.uniform(-1.0, 1.0, size=search.shape).astype(np.float32)
        return self.engine.run(search + noise * self._amplitude)

    def close(self) -> None:
        """The wrapped engine belongs to the caller, who closes it."""


class NanoTrackRoundingNoise:
    """NanoTrack's two networks with the same noise on every search crop (raw 0..255 input, so a
    grey level is one unit); the template crops stay clean, as ``RoundingNoise`` leaves templates."""

    def __init__(self, model, seed: int, grey_levels: float = GREY_LEVELS) -> None:
        self.model = model
        self.settings = model.settings
        self.name = f"{model.name}+noise{seed}"
        self._amplitude = np.float32(grey_levels)
        self._rng = np.random.default_rng(seed)

    def features(self, crop: np.ndarray) -> np.ndarray:
        if crop.shape[-1] != self.settings.exemplar_size:
            crop = crop + self._rng.uniform(-1.0, 1.0, size=crop.shape).astype(np.float32) * self._amplitude
        return self.model.features(crop)

    def head(self, template_features: np.ndarray, search_features: np.ndarray):
        return self.model.head(template_features, search_features)


def with_noise(tracker, seed: int):
    """A copy of ``tracker`` (same settings, same networks) whose search crops carry seed's noise,
    or None for a tracker whose input this cannot reach (OpenCV's peers)."""
    from edge.trackers.mixformer import MixFormerTracker
    from edge.trackers.nanotrack import NanoTracker

    if isinstance(tracker, MixFormerTracker):
        return MixFormerTracker(RoundingNoise(tracker.engine, seed), **{k: getattr(tracker.meta, k) for k in (
            "search_factor", "update_interval", "lost_score_threshold", "lost_frames", "size_update_rate",
            "hold_low_score_box")})
    if isinstance(tracker, NanoTracker):
        return NanoTracker(NanoTrackRoundingNoise(tracker.engine, seed), calibration=tracker.calibration,
                           lost_score_threshold=tracker.lost_score_threshold, lost_frames=tracker.lost_frames)
    return None


def spread(per_run: np.ndarray) -> dict[str, np.ndarray]:
    """(runs, sequences) AUCs -> per-sequence and mean-over-sequences mean, min and max."""
    per_run = np.asarray(per_run, dtype=np.float64)
    if per_run.ndim != 2 or per_run.shape[0] < 1:
        raise ValueError(f"expected (runs, sequences) scores, got shape {per_run.shape}")
    means = per_run.mean(axis=1)
    return {"mean": per_run.mean(axis=0), "min": per_run.min(axis=0), "max": per_run.max(axis=0),
            "overall": np.array([means.mean(), means.min(), means.max()])}


__all__ = ["RoundingNoise", "NanoTrackRoundingNoise", "with_noise", "spread", "GREY_LEVELS"]
