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


def build_tracker(cfg: DeviceConfig) -> Tracker | NanoTracker:
    """A Tracker on ``cfg.model`` (the bundled model when no path is set) with ``cfg.tracking``'s
    lost thresholds; a NanoTracker when ``model.path`` is a folder with NanoTrack's two files.
    Raises ConfigError when there is no model at all."""
    path = cfg.model.path or default_model_path()
    if not path:
        raise ConfigError("no model: set model.path (or --model) to a file from 'edge-track export'")
    threads = {"threads": cfg.model.threads} if cfg.model.threads else {}
    if os.path.isdir(path):
        if cfg.model.engine and cfg.model.engine != "onnxruntime":
            raise ConfigError(f"model.engine: NanoTrack runs on onnxruntime, not {cfg.model.engine}")
        if cfg.model.search_factor or cfg.model.update_interval:
            raise ConfigError("model.search_factor / model.update_interval: NanoTrack keeps its authors' settings")
        return open_nanotrack(path, lost_score_threshold=cfg.tracking.lost_score,
                              lost_frames=cfg.tracking.lost_frames, **threads)
    engine = open_engine(path, cfg.model.engine or None, **threads)
    overrides = {}
    if cfg.model.search_factor:
        overrides["search_factor"] = cfg.model.search_factor
    if cfg.model.update_interval:
        overrides["update_interval"] = cfg.model.update_interval
    return Tracker(engine, lost_score_threshold=cfg.tracking.lost_score, lost_frames=cfg.tracking.lost_frames,
                   **overrides)


def camera_model_for(camera: CameraConfig, width: int, height: int) -> CameraModel:
    """Pixel -> angle for a width x height stream: from ``camera.calibration`` when set (ConfigError
    if it does not fit the stream), else from ``camera.hfov_deg`` / ``vfov_deg``."""
    if camera.calibration:
        return CameraModel.from_calibration_file(camera.calibration, width, height)
    return CameraModel.from_fov(width, height, camera.hfov_deg, camera.vfov_deg)
