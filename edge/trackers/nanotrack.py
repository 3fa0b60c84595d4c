"""NanoTrack (V2 and V3) with onnxruntime, as its authors' tracker runs it.

OpenCV's ``cv2.TrackerNano`` runs the same V2 files with its own constants and RGB input, and
cannot load V3. This is the upstream tracking loop (HonglinChu/SiamTrackers, ``NanoTrack``),
re-implemented from its description in ``../shared/models/nanotrack_v3/SOURCE.md``:

- crops: the context square ``sqrt((w + p)(h + p))``, ``p = (w + h) / 2``, for the 127 px
  template, the same times 255/127 for the search crop; padding with the first frame's mean
  colour; raw BGR 0..255;
- the head scores a grid of points (stride 16, centred on the crop) and regresses the distances
  to the box edges from each point;
- the chosen point maximises the score times a size/aspect-change penalty, blended with a
  Hanning window; the size moves towards the new one by ``lr`` times the chosen score.

The settings come from the upstream config of each version and are selected by the files'
feature width (48 channels: V2, 96: V3) as the networks load (``edge.trackers.nanotrack_model``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.errors import ConfigError
from edge.trackers.confidence import NanoTrackMeta, nanotrack_meta
from edge.trackers.contract import Capabilities, TrackerInfo, checked_search_factor
from edge.trackers.nanotrack_model import NanoTrackModel
from edge.trackers.state import LostStreak, TrackResult, TrackState


@dataclass(frozen=True)
class NanoTrackInfo:
    """What the runtime reads off a tracker for its messages and warm-up (as ``MixFormerTracker.meta``)."""

    preset: str
    search_size: int
    precision: str = "fp32"


LARGE_CROP = 2048   # px: above this side the padded square is not built in memory


def context_crop(image: np.ndarray, centre, model_size: int, original_size: int, fill) -> np.ndarray:
    """The upstream ``get_subwindow``: the ``original_size`` square centred on ``centre`` (out of
    the image: ``fill``), resized to ``model_size``. Returns (model_size, model_size, 3) uint8."""
    side = int(original_size)
    c = (side + 1) / 2
    x1 = int(math.floor(centre[0] - c + 0.5))
    y1 = int(math.floor(centre[1] - c + 0.5))
    height, width = image.shape[:2]
    if side > LARGE_CROP:
        # A widened search around a large box: sample the square straight from the frame (the
        # same bilinear sample points as resizing the padded square) instead of building it.
        scale = side / model_size
        matrix = np.array([[scale, 0, x1 + 0.5 * scale - 0.5], [0, scale, y1 + 0.5 * scale - 0.5]])
        return cv2.warpAffine(image, matrix, (model_size, model_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in np.trunc(fill)))
    ix1, iy1 = max(x1, 0), max(y1, 0)
    ix2, iy2 = min(x1 + side, width), min(y1 + side, height)
    if ix1 == x1 and iy1 == y1 and ix2 == x1 + side and iy2 == y1 + side:
        patch = image[y1:y1 + side, x1:x1 + side]
    else:
        patch = np.empty((side, side, 3), np.uint8)
        patch[:] = fill
        if ix2 > ix1 and iy2 > iy1:
            patch[iy1 - y1:iy2 - y1, ix1 - x1:ix2 - x1] = image[iy1:iy2, ix1:ix2]
    if side != model_size:
        patch = cv2.resize(patch, (model_size, model_size))
    return patch


def _hanning_window(size: int) -> np.ndarray:
    h = np.hanning(size)
    return np.outer(h, h).reshape(-1)


def _grid_points(size: int, stride: int) -> np.ndarray:
    """(size*size, 2) x, y of each score-map point relative to the crop centre."""
    offsets = (np.arange(size) - size // 2) * stride
    x, y = np.meshgrid(offsets, offsets)
    return np.stack([x.reshape(-1), y.reshape(-1)], axis=1).astype(np.float64)


class NanoTracker:
    """NanoTrack as an ``edge.trackers.contract.Tracker`` that declares ``widen_search`` (the device
    loop widens its search while LOST), with
    TRACKING / LOST from ``lost_score_threshold`` held for ``lost_frames`` frames.

    The score it reports is ``calibration``'s confidence where the files have one (the bundled
    versions do: ``edge.trackers.confidence``), else the upstream score at the chosen point; the
    LOST rule comes with it unless given here."""

    capabilities = Capabilities(widen_search=True)

    def __init__(self, model: NanoTrackModel, *, frame_color_order: str = "RGB",
                 calibration: NanoTrackMeta | None = None,
                 lost_score_threshold: float | None = None, lost_frames: int | None = None) -> None:
        if frame_color_order not in ("RGB", "BGR"):
            raise ConfigError(f"frame_color_order must be RGB or BGR, got {frame_color_order!r}")
        self.engine = model
        self.settings = s = model.settings
        self.meta = NanoTrackInfo(preset=f"nanotrack-{s.version}", search_size=s.instance_size)
        self.calibration = calibration or nanotrack_meta(None, s.version, getattr(model, "files_sha256", None))
        self.lost_score_threshold = float(self.calibration.lost_score_threshold if lost_score_threshold is None
                                          else lost_score_threshold)
        self.lost_frames = int(self.calibration.lost_frames if lost_frames is None else lost_frames)
        self.hold_low_score_box = self.calibration.hold_low_score_box
        self.reacquire_score = max(self.calibration.reacquire_score, self.lost_score_threshold)
        self._bgr = frame_color_order == "BGR"
        self._base_factor = s.instance_size / s.exemplar_size
        self._factor = self._base_factor
        self._scan_step = 0
        self._map_size = None
        self._box = None

    @property
    def info(self) -> TrackerInfo:
        return TrackerInfo(f"NanoTrack {self.settings.version.upper()}", self.meta.preset, self.engine.name,
                           self.meta.precision)

    @property
    def box(self):
        return self._box

    @property
    def base_search_factor(self) -> float:
        """The search the authors' loop uses; the LOST search widens from it and comes back to it."""
        return self._base_factor

    @property
    def search_factor(self) -> float:
        """Search side over the template's context side (255/127 upstream). Above that, the side of
        the area scanned at the template's scale (``_scan_offset``), not a larger crop."""
        return self._factor

    def set_search_factor(self, factor: float) -> None:
        self._factor = checked_search_factor(factor)

    def _net_input(self, patch: np.ndarray) -> np.ndarray:
        bgr = patch if self._bgr else patch[:, :, ::-1]
        return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None], dtype=np.float32)

    def _context_side(self) -> float:
        w, h = self._size
        p = self.settings.context_amount * (w + h)
        return math.sqrt((w + p) * (h + p))

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        x, y, w, h = (float(v) for v in box_xywh)
        if not all(map(math.isfinite, (x, y, w, h))) or w <= 0 or h <= 0:
            raise ConfigError(f"initial box must be x,y,w,h with w, h > 0, got {box_xywh!r}")
        height, width = frame.shape[:2]
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:   # as MixFormerTracker says it
            raise ConfigError(f"initial box {(x, y, w, h)} lies outside the {width}x{height} frame")
        s = self.settings
        self._centre = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        self._size = np.array([w, h])
        self._fill = frame.reshape(-1, 3).mean(axis=0)
        crop = context_crop(frame, self._centre, s.exemplar_size, round(self._context_side()), self._fill)
        self._template = self.engine.features(self._net_input(crop))
        self._box = (x, y, w, h)
        self._frame_id = 0
        self._lost = LostStreak()
        self._scan_step = 0
        self._state = TrackState.TRACKING
        return TrackResult(box=self._box, score=1.0, state=self._state, frame_id=0)

    def update(self, frame: np.ndarray) -> TrackResult:
        if self._box is None:
            raise RuntimeError("NanoTracker.update() called before init()")
        self._frame_id += 1
        s = self.settings
        s_z = self._context_side()
        scale_z = s.exemplar_size / s_z
        # Every other frame while widened: the authors' own step at the held box (the target is
        # usually still near it); in between, one crop of the scan.
        widened = self._factor > self._base_factor
        scanning = widened and self._frame_id % 2 == 0
        # A widened search is scanned at the template's scale, one crop a frame, nearest first: a
        # crop enlarged instead would show the target smaller than the head was trained to see it.
        s_x = s_z * self._base_factor
        centre = self._centre + (self._scan_offset(s_x) if scanning else 0.0)
        if not widened:
            self._scan_step = 0
        crop = context_crop(frame, centre, s.instance_size, round(s_x), self._fill)
        cls, loc = self.engine.head(self._template, self.engine.features(self._net_input(crop)))
        if not (np.all(np.isfinite(cls)) and np.all(np.isfinite(loc))):
            self._state = self._lost.unusable(self.lost_frames)
            return TrackResult(box=self._box, score=0.0, state=self._state, frame_id=self._frame_id, valid=False)
        score, boxes, margin = self._decode(cls, loc)
        self.margin = margin   # what the confidence read: train/measure/nanotrack_confidence.py fits on it
        # Upstream's penalties: a change of size or aspect ratio costs score; the window
        # favours the centre (not while scanning: the target may be anywhere in that crop).
        w, h = self._size * scale_z
        penalty = np.exp(-(_change(_pad_side(boxes[:, 2], boxes[:, 3]) / _pad_side(w, h))
                           * _change((w / h) / (boxes[:, 2] / boxes[:, 3])) - 1) * s.penalty_k)
        influence = 0.0 if scanning else s.window_influence
        pscore = penalty * score * (1 - influence) + self._window * influence
        best = int(np.argmax(pscore))
        cx, cy, bw, bh = boxes[best] / scale_z
        lr = 0.0 if scanning else penalty[best] * score[best] * s.lr
        confidence = self.calibration.confidence
        best_score = confidence(margin) if confidence is not None else float(score[best])
        low = best_score < self.lost_score_threshold
        # Held while scanning or (with the hold policy) below the threshold: a low confidence means
        # "not here", and the last confident box is where the search goes on from. A scan crop away
        # from the box must be surer still: a look-alike there would take the head across the frame.
        held = (scanning and best_score < self.reacquire_score) or (low and self.hold_low_score_box)
        if not held:
            cx, cy = cx + centre[0], cy + centre[1]
            bw = self._size[0] * (1 - lr) + bw * lr
            bh = self._size[1] * (1 - lr) + bh * lr
            height, width = frame.shape[:2]
            cx, cy = max(0.0, min(cx, width)), max(0.0, min(cy, height))
            bw, bh = max(10.0, min(bw, width)), max(10.0, min(bh, height))
            self._centre, self._size = np.array([cx, cy]), np.array([bw, bh])
            self._box = (float(cx - bw / 2), float(cy - bh / 2), float(bw), float(bh))
        self._state = self._lost.step(best_score, self.lost_score_threshold, self.lost_frames)
        return TrackResult(box=self._box, score=best_score, state=self._state, frame_id=self._frame_id)

    def _scan_offset(self, side: float) -> np.ndarray:
        """This scan frame's crop centre, relative to the held box, in a search ``factor / base``
        times the normal one: the cells of a half-crop grid around it (the held box itself is
        searched every other frame anyway), nearest first, one a frame, round again."""
        reach = (self._factor / self._base_factor - 1.0) * side / 2
        cells = _scan_cells(max(1, int(math.ceil(reach / (side / 2) - 1e-9))))
        i, j = cells[self._scan_step % len(cells)]
        self._scan_step += 1
        return np.array([i, j], dtype=np.float64) * side / 2

    def _decode(self, cls: np.ndarray, loc: np.ndarray):
        """Target probability per point, (cx, cy, w, h) per point in template-scale pixels
        relative to the crop centre (upstream's units), and the target-minus-background logit per
        point."""
        size = cls.shape[-1]
        if size != self._map_size:
            self._map_size = size
            self._window = _hanning_window(size)
            self._points = _grid_points(size, self.settings.stride)
        logits = cls[0].reshape(2, -1).astype(np.float64)
        e = np.exp(logits - logits.max(axis=0))
        score = e[1] / e.sum(axis=0)
        margin = logits[1] - logits[0]
        left, top, right, bottom = loc[0].reshape(4, -1).astype(np.float64)
        px, py = self._points[:, 0], self._points[:, 1]
        x1, y1, x2, y2 = px - left, py - top, px + right, py + bottom
        boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)
        return score, boxes, margin


@functools.lru_cache(maxsize=16)
def _scan_cells(n: int) -> tuple[tuple[int, int], ...]:
    """The cells of the (2n+1)^2 grid but its centre, nearest first, then by angle."""
    cells = [(i, j) for i in range(-n, n + 1) for j in range(-n, n + 1) if (i, j) != (0, 0)]
    return tuple(sorted(cells, key=lambda g: (g[0] ** 2 + g[1] ** 2, math.atan2(g[1], g[0]))))


def _change(r):
    return np.maximum(r, 1.0 / r)


def _pad_side(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def open_nanotrack(folder: str, *, threads: int | None = None, **tracker_options) -> NanoTracker:
    model = NanoTrackModel(folder, threads)
    return NanoTracker(model, calibration=nanotrack_meta(folder, model.settings.version, model.files_sha256),
                       **tracker_options)
