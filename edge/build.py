"""Building the runtime's pieces from a DeviceConfig: the tracker (model, engine, tracking
settings) and the camera model (calibration file or field of view)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from edge.control.camera_model import CameraModel
from edge.engines import open_engine
from edge.errors import ConfigError
from edge.nanotrack import NanoTracker, open_nanotrack
from edge.tracker import Tracker

if TYPE_CHECKING:
    from edge.config import CameraConfig, DeviceConfig


def default_model_path() -> str:
    """The model bundled with the package, if this build has one; "" otherwise."""
    from edge.sample import BUNDLED_MODEL

    return BUNDLED_MODEL if os.path.isfile(BUNDLED_MODEL) else ""


def open_tracker(path: str, *, engine: str | None = None, threads: int | None = None, lost_score_threshold=None,
                 lost_frames=None, **overrides) -> Tracker | NanoTracker:
    """The tracker a model path names: NanoTrack for a folder with its two ONNX files, else a
    Tracker on the engine for the file (``engine``: by file ending when None). ``overrides`` are
    Tracker's metadata overrides (search_factor, ...), which NanoTrack does not take."""
    lost = {k: v for k, v in (("lost_score_threshold", lost_score_threshold), ("lost_frames", lost_frames))
            if v is not None}
    if os.path.isdir(path):
        if engine and engine != "onnxruntime":
            raise ConfigError(f"NanoTrack runs on onnxruntime, not {engine}")
        given = sorted(k for k, v in overrides.items() if v is not None)
        if given:
            raise ConfigError(f"NanoTrack keeps its authors' settings: {', '.join(given)} cannot be set for it")
        return open_nanotrack(path, threads=threads, **lost)
    return Tracker(open_engine(path, engine, **({"threads": threads} if threads else {})), **lost, **overrides)


def build_tracker(cfg: DeviceConfig) -> Tracker | NanoTracker:
    """A Tracker on ``cfg.model`` (the bundled model when no path is set) with ``cfg.tracking``'s
    lost thresholds; a NanoTracker when ``model.path`` is a folder with NanoTrack's two files.
    Raises ConfigError when there is no model at all."""
    path = cfg.model.path or default_model_path()
    if not path:
        raise ConfigError("no model: set model.path (or --model) to a file from 'edge-track export'")
    try:
        return open_tracker(path, engine=cfg.model.engine or None, threads=cfg.model.threads or None,
                            lost_score_threshold=cfg.tracking.lost_score, lost_frames=cfg.tracking.lost_frames,
                            search_factor=cfg.model.search_factor or None,
                            update_interval=cfg.model.update_interval or None)
    except ConfigError as exc:
        if os.path.isdir(path):
            raise ConfigError(f"model.path {path}: {exc}") from None
        raise


def camera_model_for(camera: CameraConfig, width: int, height: int) -> CameraModel:
    """Pixel -> angle for a width x height stream: from ``camera.calibration`` when set (ConfigError
    if it does not fit the stream), else from ``camera.hfov_deg`` / ``vfov_deg``."""
    if camera.calibration:
        return CameraModel.from_calibration_file(camera.calibration, width, height)
    return CameraModel.from_fov(width, height, camera.hfov_deg, camera.vfov_deg)
