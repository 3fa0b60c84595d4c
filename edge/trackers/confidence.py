"""A confidence that falls when the target is lost, for trackers whose own score cannot say it.

NanoTrack's score is a two-class softmax at the chosen grid point: it saturates near 1 wherever a
target-like blob is, so a tracker sitting on a look-alike still reports 0.9+. The head's logit map
keeps what the softmax throws away: a real target gives one strong peak over a low background,
a lost one a weak peak or many middling ones. ``LogitConfidence`` is a logistic model on the
peak and the mean of the map's target-minus-background logits, fitted on the training corpus
(``train/measure/nanotrack_confidence.py``); its LOST threshold is chosen on the validation split.

The numbers for a kind of file travel beside it as JSON (``edge-track.json`` in the model's folder),
or, for the upstream files this package knows, in ``edge/data/nanotrack/<version>.json``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from edge.errors import ConfigError

SIDECAR = "edge-track.json"
KNOWN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "nanotrack")
MAX_META_BYTES = 64 * 1024


@dataclass(frozen=True)
class LogitConfidence:
    """sigmoid(peak * max(margin) + mean * mean(margin) + bias) over a map of logit margins."""

    peak: float
    mean: float
    bias: float

    def __call__(self, margin: np.ndarray) -> float:
        return self.of(float(margin.max()), float(margin.mean()))

    def of(self, peak: float, mean: float) -> float:
        z = self.peak * peak + self.mean * mean + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class NanoTrackMeta:
    """What edge-track adds to a pair of NanoTrack files: the confidence and the LOST rule."""

    version: str
    confidence: LogitConfidence | None     # None: the upstream score at the chosen point
    lost_score_threshold: float
    lost_frames: int
    source: str                            # the JSON file these came from, "" for the defaults
    # Below the threshold, keep the last confident box instead of following the network's.
    hold_low_score_box: bool = False
    # What a crop of the widened search away from the box must score to take the target there.
    reacquire_score: float = 0.0


UPSTREAM_DEFAULTS = dict(lost_score_threshold=0.25, lost_frames=5)   # as ModelMeta's: nothing was fitted


def _finite(value, name: str, source: str, lo: float = -1e6, hi: float = 1e6) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ConfigError(f"{source}: {name} must be a number within [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def read_meta(path: str) -> dict:
    """The JSON object at ``path``, read only if it is a small regular file."""
    from edge.io.paths import read_regular_file

    try:
        raw = json.loads(read_regular_file(path, MAX_META_BYTES, "metadata file").decode("utf-8"))
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(why if path in why else f"cannot read {path}: {why}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return raw


def parse_meta(raw: dict, version: str, source: str) -> NanoTrackMeta:
    if raw.get("version", version) != version:
        raise ConfigError(f"{source} is for NanoTrack {raw.get('version')!r}, the files are {version}")
    conf = raw.get("confidence")
    confidence = None
    if conf is not None:
        if not isinstance(conf, dict):
            raise ConfigError(f"{source}: confidence must be an object with peak, mean and bias")
        confidence = LogitConfidence(*(_finite(conf.get(k), f"confidence.{k}", source)
                                       for k in ("peak", "mean", "bias")))
    threshold = _finite(raw.get("lost_score_threshold", UPSTREAM_DEFAULTS["lost_score_threshold"]),
                        "lost_score_threshold", source, 0.0, 1.0)
    frames = raw.get("lost_frames", UPSTREAM_DEFAULTS["lost_frames"])
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= 10_000:
        raise ConfigError(f"{source}: lost_frames must be an integer within [1, 10000], got {frames!r}")
    hold = raw.get("hold_low_score_box", False)
    if not isinstance(hold, bool):
        raise ConfigError(f"{source}: hold_low_score_box must be true or false, got {hold!r}")
    reacquire = _finite(raw.get("reacquire_score", 0.0), "reacquire_score", source, 0.0, 1.0)
    return NanoTrackMeta(version, confidence, threshold, frames, source, hold, reacquire)


def nanotrack_meta(folder: str | None, version: str, files_sha256: tuple[str, str] | None = None) -> NanoTrackMeta:
    """The folder's own ``edge-track.json``; else the one this package has for ``version``'s upstream
    files, when ``files_sha256`` (backbone, head) says these are those files; else the upstream score
    with the runtime's default LOST rule (a retrained head's logits are another scale)."""
    if folder and os.path.lexists(os.path.join(folder, SIDECAR)):
        path = os.path.join(folder, SIDECAR)
        return parse_meta(read_meta(path), version, path)
    path = os.path.join(KNOWN, f"{version}.json")
    if os.path.lexists(path):
        raw = read_meta(path)
        known = raw.get("files_sha256")
        if isinstance(known, dict) and files_sha256 == (known.get("backbone"), known.get("head")):
            return parse_meta(raw, version, path)
    return NanoTrackMeta(version, None, source="", **UPSTREAM_DEFAULTS)
