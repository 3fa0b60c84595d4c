"""Building the runtime's pieces from a DeviceConfig: the tracker (model, engine, tracking
settings) and the camera model (calibration file or field of view)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from edge.config import MODEL_LOST_SCORE
from edge.control.camera_model import CameraModel
from edge.engines import open_engine
from edge.errors import ConfigError
from edge.trackers.catalog import Entry, resolve
from edge.trackers.contract import Tracker
from edge.trackers.mixformer import MixFormerTracker
from edge.trackers.nanotrack import open_nanotrack

if TYPE_CHECKING:
    from edge.config import CameraConfig, DeviceConfig


def default_model_path() -> str:
    """The default tracker's file or folder (``edge.trackers.catalog``'s rule), "" if none is installed."""
    try:
        return resolve(None)[0]
    except ConfigError:
        return ""


def source_text(path: str, entry: Entry | None) -> str:
    """Where a tracker came from, for the lines the commands print."""
    return f"bundled '{entry.name}'" if entry is not None else path


def describe(tracker: Tracker, path: str, entry: Entry | None) -> str:
    """'<label>, <precision>, <engine>, <source>': what the main job's line names."""
    info = tracker.info
    return f"{info.label}, {info.precision}, {info.engine}, {source_text(path, entry)}"


def open_named_tracker(model: str | None, **options):
    """(tracker, path, catalog entry or None) for a bundled tracker's name, a path, or None (the
    default); ``options`` as ``open_tracker_at``'s."""
    path, entry = resolve(model)
    return open_tracker_at(path, **options), path, entry


def open_tracker_at(path: str, *, engine: str | None = None, threads: int | None = None, lost_score_threshold=None,
                    lost_frames=None, **overrides) -> Tracker:
    """The tracker a model path names: NanoTrack for a folder with its two ONNX files, else a
    MixFormerTracker on the engine for the file (``engine``: by file ending when None). ``overrides``
    are MixFormerTracker's metadata overrides (search_factor, ...), which NanoTrack does not take."""
    lost = {k: v for k, v in (("lost_score_threshold", lost_score_threshold), ("lost_frames", lost_frames))
            if v is not None}
    if os.path.isdir(path):
        if engine and engine != "onnxruntime":
            raise ConfigError(f"NanoTrack runs on onnxruntime, not {engine}")
        given = sorted(k for k, v in overrides.items() if v is not None)
        if given:
            raise ConfigError(f"NanoTrack keeps its authors' settings: {', '.join(given)} cannot be set for it")
        return open_nanotrack(path, threads=threads, **lost)
    return MixFormerTracker(open_engine(path, engine, **({"threads": threads} if threads else {})), **lost, **overrides)


def tracker_for_config(cfg: DeviceConfig) -> Tracker:
    """A MixFormerTracker on ``cfg.model`` (the bundled model when no path is set) with ``cfg.tracking``'s
    lost thresholds; a NanoTracker when ``model.path`` is a folder with NanoTrack's two files.
    Raises ConfigError when there is no model at all."""
    path, _ = resolve(cfg.model.path or None)
    lost_score = cfg.tracking.lost_score
    try:
        return open_tracker_at(path, engine=cfg.model.engine or None, threads=cfg.model.threads or None,
                            lost_score_threshold=None if lost_score == MODEL_LOST_SCORE else lost_score,
                            lost_frames=cfg.tracking.lost_frames or None,
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
