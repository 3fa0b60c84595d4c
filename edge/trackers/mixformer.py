"""The MixFormerV2 online tracking loop (spec section 4) in numpy, with an injected engine.

    tracker = MixFormerTracker(engine)
    tracker.init(frame_rgb, (x, y, w, h))
    result = tracker.update(frame_rgb)

Per frame: crop the search region around the previous box, run the engine, map the box back and
clip it. Every ``update_interval`` frames the online template becomes the best crop of the
interval that scored above ``update_score_threshold`` (or the first template if none did).
On top of the official loop the tracker reports a state: LOST after ``lost_frames`` frames in a
row below ``lost_score_threshold``, and at once for non-finite network outputs, whose box is
never used. Below that threshold the box follows the network, as upstream's does, unless the
model's metadata (or the caller) asks to hold the last confident one (``hold_low_score_box``).
"""

from __future__ import annotations

import math

import numpy as np

from edge.engines.base import Engine
from edge.errors import ConfigError
from edge.trackers.contract import Capabilities, TrackerInfo, checked_search_factor
from edge.trackers.crop import sample_target
from edge.trackers.geometry import clip_box, is_finite_box, map_box_back
from edge.trackers.preprocess import Normalizer
from edge.trackers.state import LostStreak, TrackResult, TrackState

__all__ = ["MixFormerTracker", "sigmoid"]


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _smooth_size(new, old, rate: float):
    """``new`` with its centre, but width and height moved only ``rate`` of the way from ``old``."""
    w = old[2] + rate * (new[2] - old[2])
    h = old[3] + rate * (new[3] - old[3])
    cx, cy = new[0] + new[2] / 2, new[1] + new[3] / 2
    return (cx - w / 2, cy - h / 2, w, h)


class MixFormerTracker:
    """Single-object tracker around an ``Engine`` (an ``edge.trackers.contract.Tracker``).

    Args:
        engine: anything implementing ``edge.engines.base.Engine``; its ``meta`` gives every size,
            factor and threshold unless overridden here.
        frame_color_order: colour order of the frames passed to init/update ("RGB" or "BGR").
        search_factor, update_interval, lost_score_threshold, lost_frames, size_update_rate,
        hold_low_score_box: overrides of the model's metadata.
    """

    capabilities = Capabilities(widen_search=True, template_update=True)

    def __init__(self, engine: Engine, *, frame_color_order: str = "RGB",
                 search_factor: float | None = None, update_interval: int | None = None,
                 lost_score_threshold: float | None = None, lost_frames: int | None = None,
                 size_update_rate: float | None = None, hold_low_score_box: bool | None = None) -> None:
        overrides = {k: v for k, v in dict(
            search_factor=search_factor, update_interval=update_interval,
            lost_score_threshold=lost_score_threshold, lost_frames=lost_frames,
            size_update_rate=size_update_rate, hold_low_score_box=hold_low_score_box).items() if v is not None}
        try:
            self.meta = engine.meta.replace(**overrides)
        except Exception as exc:  # ModelMeta validation names the bad field
            raise ConfigError(str(exc).replace("bad model metadata: ", "")) from None
        if frame_color_order not in ("RGB", "BGR"):
            raise ConfigError(f"frame_color_order must be RGB or BGR, got {frame_color_order!r}")
        self.engine = engine
        # The model's own search (or the override): the LOST search widens from it and returns to it.
        self.base_search_factor = self.meta.search_factor
        self._normalize = Normalizer(self.meta, frame_color_order)
        self._box: tuple[float, float, float, float] | None = None

    # -- public verbs ---------------------------------------------------------------------
    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        """Start tracking the target at ``box_xywh`` in ``frame`` ((H, W, 3) uint8)."""
        box = tuple(float(v) for v in box_xywh)
        if not is_finite_box(box) or box[2] <= 0 or box[3] <= 0:
            raise ConfigError(f"initial box must be x,y,w,h with w, h > 0, got {box_xywh!r}")
        height, width = frame.shape[:2]
        if box[0] >= width or box[1] >= height or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
            raise ConfigError(f"initial box {box} lies outside the {width}x{height} frame")
        if box[0] < 0 or box[1] < 0 or box[0] + box[2] > width or box[1] + box[3] > height:
            # Every later box is clipped the same way; this also bounds the crop size.
            box = clip_box(box, height, width)
        self._first_template = self._template_at(frame, box)
        self._online_template = self._first_template
        self._best_template = self._first_template
        self._best_score = -1.0
        self.engine.set_templates(self._first_template, self._online_template)
        self._box = box
        self._frame_id = 0
        self._lost = LostStreak()
        self._state = TrackState.TRACKING
        return TrackResult(box=box, score=1.0, state=self._state, frame_id=0)

    def update(self, frame: np.ndarray) -> TrackResult:
        """Track the target into ``frame``; returns the new box, score and state."""
        if self._box is None:
            raise RuntimeError("MixFormerTracker.update() called before init()")
        self._frame_id += 1
        meta = self.meta
        patch, window = sample_target(frame, self._box, meta.search_factor, meta.search_size)
        out = self.engine.run(self._normalize(patch))

        if not (np.all(np.isfinite(out.box_cxcywh)) and math.isfinite(out.score_logit)):
            self._state = self._lost.unusable(meta.lost_frames)
            self._step_template_schedule(frame=None, score=0.0)
            return TrackResult(box=self._box, score=0.0, state=self._state,
                               frame_id=self._frame_id, valid=False)

        score = sigmoid(out.score_logit)
        # With the hold policy, a score below the lost threshold means "not here": the last
        # confident box is held (and the runtime widens the search around it), so a target that
        # comes back near where it vanished is found again instead of a drifted box's area.
        if score >= meta.lost_score_threshold or not meta.hold_low_score_box:
            raw = map_box_back(out.box_cxcywh, self._box, window, meta.search_size)
            if meta.size_update_rate < 1.0:
                raw = _smooth_size(raw, self._box, meta.size_update_rate)
            height, width = frame.shape[:2]
            self._box = clip_box(raw, height, width)
        self._update_state(score)
        self._step_template_schedule(frame, score)
        return TrackResult(box=self._box, score=score, state=self._state, frame_id=self._frame_id)

    @property
    def info(self) -> TrackerInfo:
        return TrackerInfo(f"MixFormerV2-{self.meta.preset}", self.meta.preset, self.engine.name, self.meta.precision)

    @property
    def box(self):
        return self._box

    @property
    def search_factor(self) -> float:
        return self.meta.search_factor

    def set_search_factor(self, factor: float) -> None:
        """Change the search region (the runtime widens it step by step while LOST)."""
        self.meta = self.meta.replace(search_factor=checked_search_factor(factor))

    # -- internals ------------------------------------------------------------------------
    def _template_at(self, frame: np.ndarray, box) -> np.ndarray:
        patch, _ = sample_target(frame, box, self.meta.template_factor, self.meta.template_size)
        return self._normalize(patch)

    def _update_state(self, score: float) -> None:
        self._state = self._lost.step(score, self.meta.lost_score_threshold, self.meta.lost_frames)

    def _step_template_schedule(self, frame, score: float) -> None:
        """Spec 4.2 steps 4-6 (max_score_decay is 1.0, so no decay step)."""
        meta = self.meta
        if frame is not None and score > meta.update_score_threshold and score > self._best_score:
            self._best_template = self._template_at(frame, self._box)
            self._best_score = score
        if self._frame_id % meta.update_interval == 0:
            self._online_template = self._best_template
            self._best_score = -1.0
            self._best_template = self._first_template
            self.engine.set_templates(self._first_template, self._online_template)
