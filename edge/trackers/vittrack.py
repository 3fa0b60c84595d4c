"""VitTrack (OpenCV model zoo) with onnxruntime, as OpenCV's ``cv2.TrackerVit`` runs it.

One ONNX file takes a 128 px template and a 256 px search crop and gives three 16x16 maps: a
centre score (after a sigmoid), the box size and the centre offset, both in crop units. The loop
follows OpenCV's ``tracker_vit.cpp`` (re-implemented from its description, not copied):

- crops: a square of side ``ceil(sqrt(w * h) * factor)`` on the integer box (factor 2 for the
  template, 4 for the search), black outside the frame (OpenCV's padding asks for one pixel too
  many at the right and bottom, but ``copyMakeBorder`` on a view fills it from the frame);
- input: the crop resized bilinearly, ``(pixel / 255 - mean) / std`` with ImageNet's mean and
  std, in the frame's BGR channel order (OpenCV feeds its BGR frames without swapping; the mean
  and std are RGB's). ``input_order="RGB"`` feeds the network RGB instead: validation AUC 61.3
  against 57.3 (dev, reported once: 59.9 against 72.1), and its boxes are no longer OpenCV's;
- the centre map times a Hanning window (``0.5 - 0.5 cos(2 pi (i + 1) / 17)``, nothing zero at
  the border); its maximum is the tracking score, and the box moves only when that score is at
  least 0.20 (OpenCV's threshold; below it the last box is kept);
- the box is integer, floored, as ``cv::Rect``; the arithmetic is float32, as in C++; then (in
  OpenCV 5, measured) it is cut to the frame and kept at least 10 px a side.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import ConfigError
from edge.trackers.contract import Capabilities, TrackerInfo, checked_search_factor
from edge.trackers.state import LostStreak, TrackResult, TrackState

INPUTS = {"template": [1, 3, 128, 128], "search": [1, 3, 256, 256]}
OUTPUTS = {"output1": [1, 1, 16, 16], "output2": [1, 2, 16, 16], "output3": [1, 2, 16, 16]}
TEMPLATE_FACTOR, SEARCH_FACTOR = 2, 4      # crop side over sqrt(w * h)
MAP = 16
HOLD_THRESHOLD = 0.20                      # OpenCV's tracking_score_threshold
MIN_SIDE = 10                              # px: OpenCV 5 keeps boxes at least this wide and high
MEAN = np.float32(255) * np.array([0.485, 0.456, 0.406], np.float32)
SCALE = np.float32(1 / 255) / np.array([0.229, 0.224, 0.225], np.float32)
LARGE_CROP = 2048                          # px: a widened search square above this is not built


@dataclass(frozen=True)
class VitTrackInfo:
    """What the runtime reads off a tracker for its messages and warm-up (as ``MixFormerTracker.meta``)."""

    preset: str
    search_size: int


def _shape(arg) -> list:
    return [d if isinstance(d, int) else "?" for d in arg.shape]


class VitTrackModel:
    """The network: ``run(template_blob, search_blob) -> (score, size, offset)`` maps."""

    name = "onnxruntime"

    def __init__(self, path: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        from edge.engines.onnx import session_options

        if not os.path.isfile(path):
            raise ConfigError(f"VitTrack model file not found: {path}")
        options = session_options(threads)
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:   # onnxruntime's own errors are many lines
            raise ConfigError(f"{path} is not a VitTrack model: not valid ONNX "
                              f"({str(exc).splitlines()[0][:160]})") from None
        self.path = path
        got_in = {i.name: _shape(i) for i in self._session.get_inputs()}
        got_out = {o.name: _shape(o) for o in self._session.get_outputs()}
        for what, want, got in (("inputs", INPUTS, got_in), ("outputs", OUTPUTS, got_out)):
            if got != want:
                raise ConfigError(f"{path} is not a VitTrack model: its {what} are "
                                  f"{_describe(got)}, VitTrack's are {_describe(want)}")

    def run(self, template: np.ndarray, search: np.ndarray):
        score, size, offset = self._session.run(list(OUTPUTS), {"template": template, "search": search})
        return score, size, offset

    def close(self) -> None:
        self._session = None


def _describe(shapes: dict) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, dims))}" for name, dims in shapes.items()) or "none"


def _half(n: int) -> int:
    """C's ``n / 2`` for ints: truncated towards zero."""
    return -((-n) // 2) if n < 0 else n // 2


def crop_square(image: np.ndarray, box, factor: float, size: int) -> tuple[np.ndarray, int]:
    """OpenCV's ``crop_image`` then ``resize``: (size x size x 3 uint8 crop, crop side in frame px)."""
    x, y, w, h = box
    side = math.ceil(math.sqrt(w * h) * factor)
    x1, y1 = x + _half(w - side), y + _half(h - side)
    height, width = image.shape[:2]
    if side > LARGE_CROP:
        # A widened search around a large box: sample the square straight from the frame (the
        # same bilinear sample points as resizing it) instead of building it in memory.
        s = side / size
        matrix = np.array([[s, 0, x1 + 0.5 * s - 0.5], [0, s, y1 + 0.5 * s - 0.5]])
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0), side
    ix1, iy1 = max(x1, 0), max(y1, 0)
    ix2, iy2 = min(x1 + side, width), min(y1 + side, height)
    patch = np.zeros((side, side, 3), np.uint8)
    if ix2 > ix1 and iy2 > iy1:
        patch[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = image[iy1:iy2, ix1:ix2]
    return cv2.resize(patch, (size, size)), side


def hanning_window(size: int = MAP) -> np.ndarray:
    """OpenCV's centred Hanning window (float32): positive everywhere, as ``hann2d(.., true)``."""
    i = np.arange(1, size + 1, dtype=np.float32)
    h = np.float32(0.5) * (np.float32(1) - np.cos(np.float32(2 * math.pi / (size + 1)) * i))
    return np.outer(h, h).astype(np.float32)


class VitTracker:
    """VitTrack as an ``edge.trackers.contract.Tracker`` that declares ``widen_search`` (the device
    loop widens its search while LOST), with
    TRACKING / LOST from ``lost_score_threshold`` held for ``lost_frames`` frames.

    The defaults are OpenCV's own "not ok" (one frame below 0.20): on the validation split, from
    each first frame, that is LOST on 57 % of the frames where the box has failed (IoU < 0.1) and
    on 0.1 % of those where it tracks (IoU > 0.5); three frames in a row: 40 % and 0 %."""

    capabilities = Capabilities(widen_search=True)

    def __init__(self, model: VitTrackModel, *, frame_color_order: str = "RGB", input_order: str = "BGR",
                 lost_score_threshold: float = HOLD_THRESHOLD, lost_frames: int = 1) -> None:
        for name, order in (("frame_color_order", frame_color_order), ("input_order", input_order)):
            if order not in ("RGB", "BGR"):
                raise ConfigError(f"{name} must be RGB or BGR, got {order!r}")
        self.engine = model
        self.meta = VitTrackInfo(preset="vittrack", search_size=INPUTS["search"][-1])
        self.lost_score_threshold, self.lost_frames = float(lost_score_threshold), int(lost_frames)
        self._swap = frame_color_order != input_order
        self.input_order = input_order
        self._factor = float(SEARCH_FACTOR)
        self._window = hanning_window()
        self._rect = None

    @property
    def info(self) -> TrackerInfo:
        label = "VitTrack" if self.input_order == "BGR" else "VitTrack (RGB input)"
        return TrackerInfo(label, self.meta.preset, self.engine.name)

    @property
    def box(self):
        return None if self._rect is None else tuple(float(v) for v in self._rect)

    @property
    def search_factor(self) -> float:
        """Search side over sqrt(w * h) of the box (4 in OpenCV)."""
        return self._factor

    @property
    def base_search_factor(self) -> float:
        """OpenCV's search; the LOST search widens from it and comes back to it."""
        return float(SEARCH_FACTOR)

    def set_search_factor(self, factor: float) -> None:
        self._factor = checked_search_factor(factor)

    def _blob(self, frame: np.ndarray, factor: float, size: int) -> tuple[np.ndarray, int]:
        crop, side = crop_square(frame, self._rect, factor, size)
        ordered = crop[:, :, ::-1] if self._swap else crop
        blob = (ordered.astype(np.float32) - MEAN) * SCALE
        return np.ascontiguousarray(blob.transpose(2, 0, 1)[None]), side

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        values = [float(v) for v in box_xywh]
        if len(values) != 4 or not all(map(math.isfinite, values)) or values[2] <= 0 or values[3] <= 0:
            raise ConfigError(f"initial box must be x,y,w,h with w, h > 0, got {box_xywh!r}")
        # cv::Rect: integer, as the OpenCV peer passes it.
        self._rect = tuple(max(1, int(round(v))) if i >= 2 else int(round(v)) for i, v in enumerate(values))
        self._template, _ = self._blob(frame, TEMPLATE_FACTOR, INPUTS["template"][-1])
        self._frame_id = 0
        self._lost = LostStreak()
        return TrackResult(box=self.box, score=1.0, state=TrackState.TRACKING, frame_id=0)

    def update(self, frame: np.ndarray) -> TrackResult:
        if self._rect is None:
            raise RuntimeError("VitTracker.update() called before init()")
        self._frame_id += 1
        search, side = self._blob(frame, self._factor, INPUTS["search"][-1])
        score_map, size_map, offset_map = self.engine.run(self._template, search)
        if not all(np.all(np.isfinite(m)) for m in (score_map, size_map, offset_map)):
            return TrackResult(box=self.box, score=0.0, state=self._lost.unusable(self.lost_frames),
                               frame_id=self._frame_id, valid=False)
        windowed = score_map.reshape(MAP, MAP).astype(np.float32) * self._window
        row, col = divmod(int(np.argmax(windowed)), MAP)
        score = float(windowed[row, col])
        if score >= HOLD_THRESHOLD:
            moved = _moved(self._rect, side, col, row, size_map[0, :, row, col], offset_map[0, :, row, col])
            self._rect = _inside(moved, frame.shape[1], frame.shape[0])
        state = self._lost.step(score, self.lost_score_threshold, self.lost_frames)
        return TrackResult(box=self.box, score=score, state=state, frame_id=self._frame_id)


def _moved(rect, side: int, col: int, row: int, size, offset):
    """OpenCV's ``updateLastRect``: the map cell's box, from crop units to an integer frame box."""
    x, y, w, h = rect
    f32 = np.float32
    cx = (f32(col) + f32(offset[0])) / f32(MAP)
    cy = (f32(row) + f32(offset[1])) / f32(MAP)
    bw, bh = f32(size[0]), f32(size[1])
    x0, y0 = x + _half(w - side), y + _half(h - side)
    nx = math.floor((cx - bw / f32(2)) * f32(side) + f32(x0))
    ny = math.floor((cy - bh / f32(2)) * f32(side) + f32(y0))
    return nx, ny, math.floor(bw * f32(side)), math.floor(bh * f32(side))


def _inside(rect, width: int, height: int):
    """What OpenCV 5's tracker keeps of a new box (measured against ``cv2.TrackerVit`` with
    networks of chosen outputs; its source does not show it): the part inside the frame, then
    at least ``MIN_SIDE`` px a side, moved back inside where that crosses the far edge."""
    x, y, w, h = rect
    x1, x2 = min(max(x, 0), width), min(max(x + w, 0), width)
    y1, y2 = min(max(y, 0), height), min(max(y + h, 0), height)
    w, h = x2 - x1, y2 - y1
    if w < MIN_SIDE:
        w, x1 = MIN_SIDE, max(0, min(x1, width - MIN_SIDE))
    if h < MIN_SIDE:
        h, y1 = MIN_SIDE, max(0, min(y1, height - MIN_SIDE))
    return x1, y1, w, h


def open_vittrack(path: str, *, threads: int | None = None, **tracker_options) -> VitTracker:
    return VitTracker(VitTrackModel(path, threads), **tracker_options)
