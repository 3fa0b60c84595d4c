"""What an exported model says about itself: the numbers the runtime needs, in one place.

An edge-track ONNX file carries one metadata entry, ``edge_track``, holding this dataclass as
JSON. The runtime reads crop factors, input sizes, normalisation, bins and thresholds from it and
from nowhere else, so a model converted from another checkpoint or preset just works.

The defaults below are the official MixFormerV2 tracking settings (spec sections 3 and 4); the
presets in ``train/models/presets.py`` override the per-model ones (sizes, search factor, interval).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from edge.errors import ModelError, quoted

METADATA_KEY = "edge_track"
FORMAT_VERSION = 1

# The graph contract (README "Graph contract"): names other tools rely on.
INPUT_NAMES = ("template", "online_template", "search")
OUTPUT_NAMES = ("pred_boxes", "pred_scores")
# The exact template cache: the contract graph also outputs every layer's template keys/values,
# (N, layers, 2, heads, 2*Nt, head_dim), and the step graph takes them instead of the templates.
KV_NAME = "template_kv"
STEP_INPUT_NAMES = ("search", KV_NAME)
PRECISIONS = ("fp32", "fp16", "int8")


def step_path_for(model_path: str) -> str:
    """``dir/name.onnx`` -> ``dir/name.step.onnx``: where the cached path's step graph lives."""
    root, ext = os.path.splitext(model_path)
    return f"{root}.step{ext or '.onnx'}"


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# What each number can be, inclusive; a file with another value is damaged or not ours, and is
# refused at load (a NaN mean once passed and made every frame LOST; a factor of 1e30 crashed the
# first crop). Sizes are network input pixels; bins and the intervals are counts.
INT_RANGES = {"template_size": (1, 1024), "search_size": (1, 1024), "bins": (1, 4096),
              "update_interval": (1, 100_000), "lost_frames": (1, 10_000)}
# Factors scale the target's size to the crop's side. The search factor is widened at run time
# while LOST, up to the config's tracking.max_search_factor, which has the same ceiling.
SEARCH_FACTOR_MAX = 30.0
NUMBER_RANGES = {"search_factor": (1.0, SEARCH_FACTOR_MAX), "template_factor": (1.0, 10.0),
                 "update_score_threshold": (0.0, 1.0), "lost_score_threshold": (0.0, 1.0)}
# Pixels are normalised as (x / 255 - mean) / std: a mean is a share of the pixel range, a std
# from raw pixels' 1/255 to ten times the range.
CHANNEL_RANGES = {"mean": (0.0, 1.0), "std": (0.001, 10.0)}


def _within(value, lo: float, hi: float) -> bool:
    """A real number (not a bool) in [lo, hi]; NaN is in no range."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi


@dataclass(frozen=True)
class ModelMeta:
    """Everything the runtime needs to drive a MixFormerV2 graph.

    Sizes are in pixels of the network input; factors scale sqrt(w*h) of the target box to the
    side of the square crop taken from the frame.
    """

    preset: str
    template_size: int
    search_size: int
    search_factor: float
    bins: int
    template_factor: float = 2.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "RGB"
    # The online template is replaced every `update_interval` frames by the best crop of the
    # interval whose score exceeded `update_score_threshold` (spec 4.2, steps 5-6).
    update_interval: int = 200
    update_score_threshold: float = 0.5
    # Below this score for `lost_frames` frames in a row the tracker reports LOST.
    lost_score_threshold: float = 0.25
    lost_frames: int = 5
    # Fraction of the predicted size change applied each frame (1: take the prediction as is,
    # as upstream). Below 1 the size follows smoothly, which stops a weak model's boxes from
    # collapsing or ballooning over a few frames; the centre always follows at once.
    size_update_rate: float = 1.0
    # Below `lost_score_threshold`, hold the last confident box instead of following the network's
    # (a target that reappears near where it vanished is found again). Off reproduces the official
    # loop, which follows every box (spec 4.2 step 3): models from official checkpoints keep it off.
    hold_low_score_box: bool = False
    graph: str = "full"
    # With graph == "cached": the step graph's file name, in the same folder as the model.
    step_file: str = ""
    precision: str = "fp32"
    checkpoint_sha256: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        for name, (lo, hi) in INT_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                problems.append(f"{name} must be an integer within [{lo}, {hi}], got {quoted(value)}")
        for name, (lo, hi) in NUMBER_RANGES.items():
            if not _within(getattr(self, name), lo, hi):
                problems.append(f"{name} must be a number within [{lo}, {hi}], got {quoted(getattr(self, name))}")
        rate = self.size_update_rate
        if not _within(rate, 0.0, 1.0) or rate == 0:
            problems.append(f"size_update_rate must be within (0, 1], got {quoted(rate)}")
        if not isinstance(self.hold_low_score_box, bool):
            problems.append(f"hold_low_score_box must be true or false, got {quoted(self.hold_low_score_box)}")
        for name, (lo, hi) in CHANNEL_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 3 or not all(_within(v, lo, hi) for v in value):
                problems.append(f"{name} must be three numbers within [{lo}, {hi}], got {quoted(value)}")
        if self.color_order not in ("RGB", "BGR"):
            problems.append(f"color_order must be RGB or BGR, got {quoted(self.color_order)}")
        if self.graph not in ("full", "cached"):
            problems.append(f"graph must be 'full' or 'cached', got {quoted(self.graph)}")
        if self.graph == "cached" and not self.step_file:
            problems.append("a cached graph needs step_file")
        for name in ("preset", "step_file", "checkpoint_sha256"):
            if not isinstance(getattr(self, name), str):
                problems.append(f"{name} must be a string, got {quoted(getattr(self, name))}")
        if isinstance(self.step_file, str) and os.path.basename(self.step_file) != self.step_file:
            problems.append(f"step_file must be a file name beside the model, got {quoted(self.step_file)}")
        if not isinstance(self.extra, dict):
            problems.append(f"extra must be a mapping, got {quoted(self.extra)}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {quoted(self.precision)}")
        if self.format_version != FORMAT_VERSION:
            problems.append(
                f"format_version {quoted(self.format_version)} is not supported "
                f"(this edge-track reads version {FORMAT_VERSION})"
            )
        if problems:
            raise ModelError("bad model metadata: " + "; ".join(problems))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def replace(self, **changes) -> "ModelMeta":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "model") -> "ModelMeta":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: metadata '{METADATA_KEY}' is not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError):   # an integer of thousands of digits, arrays nested too deep
            raise ModelError(f"{source}: metadata '{METADATA_KEY}' is not JSON this edge-track can read") from None
        if not isinstance(raw, dict):
            raise ModelError(f"{source}: metadata '{METADATA_KEY}' is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelError(f"{source}: unknown metadata field {quoted(unknown[0])} (newer edge-track?)")
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in raw and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ModelError(f"{source}: metadata lacks required field '{missing[0]}'")
        if "hold_low_score_box" not in raw:
            raw["hold_low_score_box"] = holds_box_by_default(raw)
        for key in ("mean", "std"):
            if key in raw and isinstance(raw[key], list):
                raw[key] = tuple(raw[key])
        try:
            return cls(**raw)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from None


def holds_box_by_default(raw: dict) -> bool:
    """The policy of a model whose metadata predates ``hold_low_score_box``.

    Only the NanoTrack-stem models trained here (the bundled default) were tuned with the box held;
    every other model, and every model converted from an official checkpoint, follows the network.
    """
    extra = raw.get("extra")
    return isinstance(extra, dict) and extra.get("stem") == "nanotrack"
