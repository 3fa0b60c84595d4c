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
feature width (48 channels: V2, 96: V3).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.engines.onnx_dims import OnnxFormatError, free_spatial_dims
from edge.errors import ConfigError, first_line
from edge.trackers.confidence import NanoTrackMeta, nanotrack_meta
from edge.trackers.nanotrack_files import find_files
from edge.trackers.state import LostStreak, TrackResult, TrackState


@dataclass(frozen=True)
class NanoTrackSettings:
    """The TRACK section of an upstream config."""

    version: str
    window_influence: float
    penalty_k: float
    lr: float
    context_amount: float = 0.5
    exemplar_size: int = 127
    instance_size: int = 255
    stride: int = 16


SETTINGS = {
    48: NanoTrackSettings("v2", window_influence=0.490, penalty_k=0.150, lr=0.385),   # configv2.yaml
    96: NanoTrackSettings("v3", window_influence=0.455, penalty_k=0.138, lr=0.348),   # configv3.yaml
}


@dataclass(frozen=True)
class NanoTrackInfo:
    """What the runtime reads off a tracker for its messages and warm-up (as ``Tracker.meta``)."""

    preset: str
    search_size: int
    precision: str = "fp32"


class NanoTrackModel:
    """The two networks: ``features(crop)`` and ``head(template_features, search_features)``."""

    name = "onnxruntime"

    def __init__(self, folder: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        from edge.engines.onnx import session_options

        backbone_path, head_path = find_files(folder)
        options = session_options(threads)    # the runtime's own: no spinning threads
        options.log_severity_level = 4        # its errors are ours to say, in one line (no coloured log line)
        quiet_onnxruntime(ort)
        try:
            # Type and size first: a FIFO would block the read, /dev/zero never end, 200 MB of
            # zeros take a minute to parse.
            backbone_bytes, head = read_model_file(backbone_path), read_model_file(head_path)
            # Which files these are: the confidence fitted for upstream's files applies to them alone.
            self.files_sha256 = (hashlib.sha256(backbone_bytes).hexdigest(), hashlib.sha256(head).hexdigest())
            backbone = free_spatial_dims(backbone_bytes)
            self._backbone = ort.InferenceSession(backbone, options, providers=["CPUExecutionProvider"])
            self._head = ort.InferenceSession(head, options, providers=["CPUExecutionProvider"])
        except (OnnxFormatError, OSError) as exc:
            raise ConfigError(f"NanoTrack files in {folder} cannot be read: {first_line(exc)}") from None
        except ConfigError:
            raise
        except Exception as exc:   # onnxruntime's own errors are many lines; MemoryError has none
            raise ConfigError(f"NanoTrack files in {folder} are not valid ONNX: {first_line(exc)}") from None
        self._backbone_input = self._backbone.get_inputs()[0].name
        heads = self._head.get_inputs()
        if len(heads) != 2 or len(heads[0].shape) != 4 or len(self._head.get_outputs()) != 2:
            raise ConfigError(f"{head_path}: not a NanoTrack head (two feature inputs, score and box outputs)")
        self._head_inputs = [i.name for i in heads]
        channels = heads[0].shape[1]
        if channels not in SETTINGS:
            raise ConfigError(f"{head_path}: {channels}-channel features; NanoTrack V2 has 48, V3 96")
        self.settings = SETTINGS[channels]
        try:
            template = self.features(np.zeros((1, 3, self.settings.exemplar_size, self.settings.exemplar_size),
                                              np.float32))
            made = template.shape
        except Exception as exc:
            raise ConfigError(f"{backbone_path}: not a NanoTrack backbone: {first_line(exc)}") from None
        if len(made) != 4 or made[1] != channels:
            raise ConfigError(f"{backbone_path} gives {made[1] if len(made) == 4 else '?'}-channel features and "
                              f"{head_path} takes {channels}: the two files are from different versions")
        # The head's outputs, as the tracker reads them, on what the backbone gives for a search crop.
        try:
            size = self.settings.instance_size
            search = self.features(np.zeros((1, 3, size, size), np.float32))
            cls, loc = self.head(template, search)
        except Exception as exc:
            raise ConfigError(f"{head_path}: not a NanoTrack head for {backbone_path}: {first_line(exc)}") from None
        check_head_outputs(head_path, np.shape(cls), np.shape(loc), np.shape(search))

    def features(self, crop: np.ndarray) -> np.ndarray:
        return self._backbone.run(None, {self._backbone_input: crop})[0]

    def head(self, template_features: np.ndarray, search_features: np.ndarray):
        cls, loc = self._head.run(None, dict(zip(self._head_inputs, (template_features, search_features))))
        return cls, loc

    def close(self) -> None:
        self._backbone = self._head = None


MAX_MODEL_BYTES = 64 * 2**20   # NanoTrack's files are 1-2 MB: far larger is not one of them


def read_model_file(path: str, limit: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a model file, checked before they are read: a regular file (a FIFO would block,
    a link to /dev/zero never end), at most ``limit`` bytes, and starting as an ONNX model does (its
    first field, the IR version: 200 MB of zeros are refused at once, not parsed for a minute).
    OSError (one line) otherwise."""
    import errno

    from edge.io.paths import read_regular_file

    data = read_regular_file(path, limit, "NanoTrack file")
    if not data.startswith(b"\x08"):   # ModelProto field 1 (ir_version), a varint: what every exporter writes first
        raise OSError(errno.EINVAL, f"{path} is not an ONNX file")
    return data


def check_head_outputs(head_path: str, cls_shape, loc_shape, search_shape) -> None:
    """ConfigError (one line) unless the head gives what the tracker decodes: a 2-channel score
    map and a 4-channel box map on the same square grid, no larger than the search features."""
    grid = tuple(cls_shape[2:]) if len(cls_shape) == 4 else None
    problem = None
    if len(cls_shape) != 4 or len(loc_shape) != 4 or cls_shape[0] != 1 or loc_shape[0] != 1:
        problem = f"outputs of shapes {tuple(cls_shape)} and {tuple(loc_shape)}, expected (1, 2, N, N) and (1, 4, N, N)"
    elif cls_shape[1] == 4 and loc_shape[1] == 2:
        problem = "its outputs are swapped (box map first, score map second)"
    elif cls_shape[1] != 2:
        problem = f"a {cls_shape[1]}-channel score map (NanoTrack's has 2: background, target)"
    elif loc_shape[1] != 4:
        problem = f"a {loc_shape[1]}-channel box map (NanoTrack's has 4: left, top, right, bottom)"
    elif grid[0] != grid[1] or tuple(loc_shape[2:]) != grid:
        problem = f"a {grid[0]}x{grid[1]} score grid and a {loc_shape[2]}x{loc_shape[3]} box grid (one square grid)"
    elif len(search_shape) == 4 and grid[0] > search_shape[-1]:
        problem = (f"a {grid[0]}x{grid[1]} grid for {search_shape[-2]}x{search_shape[-1]} search features "
                   "(at most their size)")
    if problem:
        raise ConfigError(f"{head_path}: not a NanoTrack head: {problem}")


def quiet_onnxruntime(ort) -> None:
    """onnxruntime's process-wide log at FATAL only: a file it refuses is one line of ours, without
    its own coloured error line before it."""
    try:
        ort.set_default_logger_severity(4)
    except Exception:
        pass


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
    """NanoTrack behind the same verbs as ``edge.trackers.mixformer.MixFormerTracker``: init, update, box,
    search_factor / set_search_factor (the device loop widens the search while LOST), with
    TRACKING / LOST from ``lost_score_threshold`` held for ``lost_frames`` frames.

    The score it reports is ``calibration``'s confidence where the files have one (the bundled
    versions do: ``edge.trackers.confidence``), else the upstream score at the chosen point; the
    LOST rule comes with it unless given here."""

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
    def label(self) -> str:
        return f"NanoTrack {self.settings.version.upper()}"

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
        if not (math.isfinite(factor) and factor > 0):
            raise ConfigError(f"search factor must be a positive number, got {factor!r}")
        self._factor = float(factor)

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
        self.margin = margin   # what the confidence read: train/nanotrack_confidence.py fits on it
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
