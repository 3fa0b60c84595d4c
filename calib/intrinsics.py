"""Camera intrinsics from chessboard (or ChArUco) views: K, distortion, image size, RMS.

Views are taken at the resolution and sensor mode used for tracking (binning or cropping changes
the intrinsics). Each view is checked before it is used: the board must be found, the image sharp
(variance of the Laplacian inside the board), and the view different enough from the ones already
kept (mean corner displacement). Too few good views: nothing is written.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import cv2
import numpy as np
import yaml

from edge.camera.folder import IMAGE_EXTENSIONS, read_rgb
from edge.errors import ConfigError, EdgeTrackError, SourceError
from edge.io.atomic_file import write_atomic

log = logging.getLogger("calib.intrinsics")

RMS_WARN_PX = 0.5
MIN_VIEWS = 8


@dataclass
class ViewReport:
    name: str
    used: bool
    reason: str = ""
    sharpness: float = 0.0
    error_px: float = float("nan")


@dataclass
class IntrinsicsResult:
    K: np.ndarray
    dist: np.ndarray
    image_size: tuple[int, int]
    model: str
    rms_px: float
    views: list[ViewReport] = field(default_factory=list)

    def to_yaml_dict(self, sensor_mode: str = "") -> dict:
        return {"K": self.K.tolist(), "dist": self.dist.reshape(-1).tolist(),
                "image_size": list(self.image_size), "model": self.model, "sensor_mode": sensor_mode,
                "rms_px": float(self.rms_px),
                "per_view_error_px": {v.name: float(v.error_px) for v in self.views if v.used},
                "rejected": {v.name: v.reason for v in self.views if not v.used}}


def board_points(cols: int, rows: int, square: float) -> np.ndarray:
    """(N, 3) float32 inner-corner positions on the board plane, row by row."""
    grid = np.zeros((rows * cols, 3), np.float32)
    grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square
    return grid


def sharpness(gray: np.ndarray, corners: np.ndarray) -> float:
    """Variance of the Laplacian inside the board's bounding box (blurred views score low)."""
    x, y, w, h = cv2.boundingRect(corners.astype(np.float32))
    roi = gray[max(0, y):y + h, max(0, x):x + w]
    return float(cv2.Laplacian(roi, cv2.CV_64F).var()) if roi.size else 0.0


def detect(gray: np.ndarray, cols: int, rows: int):
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(gray, (cols, rows), flags=flags)
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 1e-3)
    refined = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1), criteria)
    return np.asarray(refined, np.float32).reshape(-1, 1, 2)   # OpenCV versions differ in shape


class ChessboardDetector:
    """All inner corners of a cols x rows chessboard, or nothing."""

    def __init__(self, cols: int, rows: int, square: float) -> None:
        self.cols, self.rows = cols, rows
        self.obj = board_points(cols, rows, square)
        self.ids = np.arange(cols * rows)
        self.describe = f"{cols}x{rows} board"

    def __call__(self, gray):
        corners = detect(gray, self.cols, self.rows)
        return None if corners is None else (self.obj, corners, self.ids)


class CharucoDetector:
    """Corners of a ChArUco board (opencv-contrib): partial views count, ids tell which corners."""

    def __init__(self, squares_x: int, squares_y: int, square: float, marker: float, dictionary: str,
                 min_corners: int = 8) -> None:
        aruco = getattr(cv2, "aruco", None)
        if aruco is None:
            raise ConfigError("ChArUco boards need opencv-contrib: pip install 'edge-track[peers]'")
        try:
            dict_id = getattr(aruco, dictionary)
        except AttributeError:
            raise ConfigError(f"unknown ArUco dictionary {dictionary} (e.g. DICT_4X4_50, DICT_5X5_100)") from None
        self.board = aruco.CharucoBoard((squares_x, squares_y), square, marker, aruco.getPredefinedDictionary(dict_id))
        self.detector = aruco.CharucoDetector(self.board)
        self.min_corners = min_corners
        self.describe = f"{squares_x}x{squares_y} ChArUco board"

    def __call__(self, gray):
        corners, ids, _, _ = self.detector.detectBoard(gray)
        if ids is None or len(ids) < self.min_corners:
            return None
        obj, img = self.board.matchImagePoints(corners, ids)
        return (np.asarray(obj, np.float32).reshape(-1, 3), np.asarray(img, np.float32).reshape(-1, 1, 2),
                np.asarray(ids).reshape(-1))


def _is_duplicate(ids, corners, kept, min_move_px: float) -> bool:
    """Same corners seen at (almost) the same place as in a view already kept."""
    here = dict(zip(ids.tolist(), corners.reshape(-1, 2)))
    for other_ids, other in kept:
        shared = [i for i in other_ids.tolist() if i in here]
        if len(shared) < 0.8 * min(len(here), len(other_ids)):
            continue
        there = dict(zip(other_ids.tolist(), other.reshape(-1, 2)))
        if np.mean([np.linalg.norm(here[i] - there[i]) for i in shared]) < min_move_px:
            return True
    return False


def calibrate(images, cols: int, rows: int, square: float = 1.0, *, fisheye: bool = False,
              min_sharpness: float = 30.0, min_move_px: float = 8.0, min_views: int = MIN_VIEWS,
              detector=None) -> IntrinsicsResult:
    """images: iterable of (name, (H, W, 3) uint8 BGR or RGB, or (H, W) gray).

    detector: ``ChessboardDetector(cols, rows, square)`` by default, or a ``CharucoDetector``.
    """
    detector = detector or ChessboardDetector(cols, rows, square)
    views: list[ViewReport] = []
    kept_corners, kept_ids, object_points, size = [], [], [], None
    for name, image in images:
        if image is None:
            views.append(ViewReport(name, False, "unreadable"))
            continue
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = gray.shape[:2]
        if size is None:
            size = (w, h)
        elif size != (w, h):
            views.append(ViewReport(name, False, f"size {w}x{h} differs from {size[0]}x{size[1]}"))
            continue
        found = detector(gray)
        if found is None:
            views.append(ViewReport(name, False, "board not found"))
            continue
        obj, corners, ids = found
        sharp = sharpness(gray, corners)
        if sharp < min_sharpness:
            views.append(ViewReport(name, False, f"blurred (sharpness {sharp:.0f} < {min_sharpness:g})", sharp))
            continue
        if _is_duplicate(ids, corners, list(zip(kept_ids, kept_corners)), min_move_px):
            views.append(ViewReport(name, False, "duplicate of an earlier view", sharp))
            continue
        kept_corners.append(corners)
        kept_ids.append(ids)
        object_points.append(obj.copy())
        views.append(ViewReport(name, True, sharpness=sharp))
    if not views:
        raise SourceError("no calibration images")
    if len(kept_corners) < min_views:
        reasons = sorted({v.reason for v in views if not v.used})
        raise EdgeTrackError(f"only {len(kept_corners)} usable views of the {detector.describe} (need {min_views}); "
                             f"rejected: {'; '.join(reasons) or 'none'}")
    if fisheye:
        K, dist = np.zeros((3, 3)), np.zeros((4, 1))
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
        rms, K, dist, rvecs, tvecs = cv2.fisheye.calibrate(
            [o.reshape(-1, 1, 3).astype(np.float64) for o in object_points],
            [c.reshape(-1, 1, 2).astype(np.float64) for c in kept_corners], size, K, dist, flags=flags)
        project = lambda o, r, t: cv2.fisheye.projectPoints(o.reshape(-1, 1, 3).astype(np.float64), r, t, K, dist)[0]
    else:
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(object_points, kept_corners, size, None, None)
        project = lambda o, r, t: cv2.projectPoints(o, r, t, K, dist)[0]
    used = [v for v in views if v.used]
    for view, o, c, r, t in zip(used, object_points, kept_corners, rvecs, tvecs):
        residual = project(o, r, t).reshape(-1, 2) - c.reshape(-1, 2)
        view.error_px = float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1))))
    if rms > RMS_WARN_PX:
        log.warning("RMS reprojection error %.2f px is above %.1f px: check the board's flatness, blur and coverage",
                    rms, RMS_WARN_PX)
    return IntrinsicsResult(K=K, dist=dist, image_size=size, model="fisheye" if fisheye else "pinhole",
                            rms_px=float(rms), views=views)


def images_from_folder(folder: str):
    if not os.path.isdir(folder):
        raise SourceError(f"no such image folder: {folder}")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise SourceError(f"no images in {folder}")
    for name in names:
        try:   # a FIFO or device among the images is skipped (None), never read
            image = cv2.cvtColor(read_rgb(os.path.join(folder, name)), cv2.COLOR_RGB2BGR)
        except SourceError:
            image = None
        yield name, image


def images_from_source(spec: str, count: int, every: int = 15):
    """Every ``every``-th frame of a live source or video, up to ``count`` views."""
    from edge.camera import open_source

    source = open_source(spec)
    try:
        taken = 0
        for frame in source:
            if frame.index % every == 0:
                yield f"frame{frame.index:05d}", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
                taken += 1
                if taken >= count:
                    return
    finally:
        source.close()


def write_result(result: IntrinsicsResult, path: str, sensor_mode: str = "") -> None:
    # Whole or not at all: a failed write (full disk, ulimit -f, a kill) keeps the calibration there was.
    try:
        write_atomic(path, yaml.safe_dump(result.to_yaml_dict(sensor_mode), sort_keys=False))
    except OSError as exc:
        raise EdgeTrackError(f"cannot write {path}: {exc.strerror or exc} (the file there is unchanged)") from None


def parse_board(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--board must be COLSxROWS of inner corners, e.g. 9x6, got {text!r}") from None
    if cols < 2 or rows < 2:
        raise ConfigError(f"--board needs at least 2x2 inner corners, got {text!r}")
    return cols, rows
