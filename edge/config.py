"""One typed, validated configuration for a device, loaded from YAML.

Every section is a dataclass with defaults, loaded by one mechanism (edge.schema): each value is
converted to its field's declared type, then every rule attached to the field runs; the loader
names the key in one line (``outputs[1].port: expected a string, got 3``). Each output's keys are
its own settings class, beside the output (edge.outputs). Unknown keys, duplicate keys, wrong types,
out-of-range values and everything ``run`` would refuse later (a target it cannot parse, a track
log it cannot write, a MAVLink port it cannot open) are refused here, so
``edge-track config check FILE`` and ``edge-track run`` reject the same files.
``edge-track config show`` prints the defaults and the choices the plug-in tables offer.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Callable

from edge.control.settings import ControlConfig
from edge.engines.model_meta import INT_RANGES, NUMBER_RANGES, SEARCH_FACTOR_MAX
from edge.errors import ConfigError
from edge.io.safe_yaml import read_yaml
from edge.outputs import OutputConfig
from edge.outputs.base import LogConfig
from edge.schema import Rule, build_dataclass, checked, choices, in_range, num, one_of
from edge.trackers.lost_search import LostSearchSettings

# build_dataclass and num are the framework's: the training configs import them from here.
# ControlConfig is the controller's own section (edge.control.settings), named here with the others.
__all__ = ["ControlConfig", "DeviceConfig", "build_dataclass", "load_config", "load_config_file", "num"]


def _not_above(other: str) -> Rule:
    def rule(value, section) -> None:
        if value > getattr(section, other):
            raise ValueError(f"must not exceed {other}")
    return rule


def _unset_or(rule: Rule) -> Rule:
    """Rule: zero means "not set"; anything else must pass ``rule``."""
    def unset_or(value, section) -> None:
        if value != 0:
            rule(value, section)
    return unset_or


MODEL_LOST_SCORE = -1.0   # tracking.lost_score's "the model's own"


def _model_or(rule: Rule) -> Rule:
    """Rule: MODEL_LOST_SCORE means "the model's own"; anything else must pass ``rule``."""
    def model_or(value, section) -> None:
        if value != MODEL_LOST_SCORE:
            rule(value, section)
    return model_or


def _optional(check: Callable[[str], None]) -> Rule:
    """Rule: an empty string means "none"; anything else must pass ``check(text)``."""
    def rule(value, section) -> None:
        if value:
            check(value)
    return rule


def _existing_file(path: str) -> None:
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")


def _model_path(path: str) -> None:
    from edge.trackers.catalog import resolve
    from edge.trackers.nanotrack_files import find_files

    if not os.path.exists(path):
        try:
            resolve(path, option="")    # a bundled tracker's name
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    elif os.path.isdir(path):
        try:
            find_files(path)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    elif not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")


def _camera_source(text: str, section) -> None:
    from edge.camera import source_kind
    from edge.errors import SourceError

    try:
        source_kind(text)
    except SourceError as exc:
        raise ValueError(str(exc)) from None


def _engines():
    from edge.engines import ENGINES

    return sorted(ENGINES)


def _target(text: str) -> None:
    from edge.target import check_target

    check_target(text)


def _writable_file(path: str) -> None:
    from edge.io.paths import check_writable_file

    check_writable_file(path)


def _video_file(path: str) -> None:
    from edge.io.video_out import check_video_path

    check_video_path(path)


# -- the schema --------------------------------------------------------------------------------

@dataclass
class CameraConfig:
    # camera index, /dev/videoN, file, folder, URL, GStreamer pipeline, "picamera2" (see config show)
    source: str = checked(_camera_source, default="0")
    width: int = num(640, 16, 8192)
    height: int = num(480, 16, 8192)
    fps: float = num(30.0, 0.1, 1000.0)
    # Field of view used for pixel -> angle when no calibration file is given.
    hfov_deg: float = num(62.2, 1.0, 179.0)
    vfov_deg: float = num(48.8, 1.0, 179.0)
    calibration: str = checked(_optional(_existing_file), default="")  # from `edge-track calibrate intrinsics`
    reconnect_initial_s: float = checked(in_range(0.01, 60.0), _not_above("reconnect_max_s"), default=0.5)
    reconnect_max_s: float = num(10.0, 0.1, 600.0)
    frame_timeout_s: float = num(2.0, 0.05, 60.0)   # no frame for this long: LOST + stop
    loop_file: bool = False            # replay a video file / folder forever (demos, soak tests)
    start_timeout_s: float = num(30.0, 0.1, 600.0)  # live camera: wait this long for a first frame


@dataclass
class ModelConfig:
    # a bundled tracker's name (edge-track models), an .onnx / .tflite / .engine file, or a folder with
    # NanoTrack's two ONNX files; empty: the default tracker
    path: str = checked(_optional(_model_path), default="")
    engine: str = checked(one_of(_engines, empty_ok=True), default="")  # empty: by file ending
    threads: int = num(0, 0, 256)      # 0: physical cores
    # 0: from the model; else within the range a model's own value has
    search_factor: float = checked(_unset_or(in_range(*NUMBER_RANGES["search_factor"])), default=0.0)
    update_interval: int = checked(_unset_or(in_range(*INT_RANGES["update_interval"])), default=0)


@dataclass
class TrackingConfig:
    # "x,y,w,h" or "center:WxH"; empty: wait for a command
    init: str = checked(_optional(_target), default="")
    # The LOST rule: below lost_score for lost_frames frames in a row. Unset (-1, 0): the model's
    # own, chosen on the validation split and carried in its metadata. lost_score 0: never LOST.
    lost_score: float = checked(_model_or(in_range(0.0, 1.0)), default=MODEL_LOST_SCORE)
    lost_frames: int = checked(_unset_or(in_range(*INT_RANGES["lost_frames"])), default=0)
    # While LOST the search region grows by this factor per frame, up to max_search_factor.
    widen_step: float = num(LostSearchSettings.widen_step, 1.0, 3.0)
    max_search_factor: float = num(LostSearchSettings.max_search_factor, 1.0, SEARCH_FACTOR_MAX)


# More outputs than any head needs: each is opened, fed and reconnected every frame.
MAX_OUTPUTS = 16


def _something_to_drive(value, section) -> None:
    """A run with no enabled output would track and drive nothing, silently: a dry run says so."""
    if not value:
        raise ValueError("empty: list at least one output (type: log is the dry run: commands logged, none sent)")
    if not any(out.enabled for out in value):
        raise ValueError("every output is disabled: enable one, or add one of type: log for a dry run")


@dataclass
class TelemetryConfig:
    track_log: str = checked(_optional(_writable_file), default="")  # JSONL path; empty: none
    track_log_max_mb: float = num(50.0, 0.01, 100000.0)   # rotate at this size...
    track_log_keep: int = num(3, 0, 100)                   # ...keeping this many old files (.1, .2, ...)
    record: str = checked(_optional(_video_file), default="")   # annotated video path; empty: none
    status_interval_s: float = num(5.0, 0.1, 3600.0)


@dataclass
class WebConfig:
    enabled: bool = False
    bind: str = "127.0.0.1"            # another address requires the token (printed at start)
    port: int = num(8080, 0, 65535)
    max_fps: float = num(8.0, 0.5, 60.0)            # live view rate cap
    jpeg_quality: int = num(70, 10, 95)
    max_width: int = num(960, 64, 4096)             # live view is downscaled to this width
    # where the token file lives; empty: $STATE_DIRECTORY or ~/.local/state/edge-track
    state_dir: str = ""


@dataclass
class DeviceConfig:
    camera: CameraConfig = field(default_factory=CameraConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    # Without the key, one log output: the dry run, as `config show` prints it.
    # Each item's type: picks its keys: the output's own settings (edge.outputs.OUTPUTS).
    outputs: list[OutputConfig] = checked(_something_to_drive, default_factory=lambda: [LogConfig()],
                                          max_items=MAX_OUTPUTS)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    web: WebConfig = field(default_factory=WebConfig)


# -- loading -----------------------------------------------------------------------------------

def load_config(data: dict | None) -> DeviceConfig:
    """A DeviceConfig from parsed YAML (None: all defaults), with ``control.profile`` laid over
    the control section; ConfigError (one line, naming the key) for anything ``run`` would refuse."""
    cfg = build_dataclass(DeviceConfig, {} if data is None else data)
    if cfg.control.profile:
        cfg.control = apply_profile(cfg.control, cfg.control.profile)
    return cfg


def apply_profile(control: ControlConfig, path: str) -> ControlConfig:
    """The control section with a calibration profile's keys laid over it (validated the same way)."""
    try:
        data = read_yaml(path, "profile") or {}
    except ConfigError as exc:
        raise ConfigError(f"control.profile: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("control", {}), dict):
        raise ConfigError(f"control.profile: {path} must hold a 'control' mapping")
    merged = {**dataclasses.asdict(control), **data.get("control", {}), "profile": path}
    try:
        return build_dataclass(ControlConfig, merged, "control")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_config_file(path: str) -> DeviceConfig:
    """``load_config`` on a YAML file; every error is one line starting with the path."""
    data = read_yaml(path, "config")
    try:
        return load_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(config: DeviceConfig) -> dict:
    return dataclasses.asdict(config)


def dump_defaults() -> str:
    """The default configuration as YAML (its one output: log), headed by comments listing the
    choices the plug-in tables offer (the same tables ``config check`` reads)."""
    import yaml

    from edge.camera import SOURCES

    lines = ["# edge-track device configuration: the defaults. Choices:",
             f"#   camera.source: {', '.join(kind.name for kind in SOURCES)}"]
    lines += [f"#   {key}: {', '.join(listed)}" for key, listed in choices(DeviceConfig)]
    from edge.trackers.catalog import load_catalog

    catalog = load_catalog()
    default = catalog.default()
    lines += [f"#   model.path: a bundled tracker ({', '.join(catalog.names)}), a model file or a NanoTrack "
              f"folder; '' is the default tracker{f' ({default.name})' if default else ''} (edge-track models)",
              "#   0 or '' below means 'the model's own' (search_factor, update_interval, threads: physical "
              "cores, lost_frames); lost_score -1: the model's own LOST threshold"]
    return "\n".join(lines) + "\n" + yaml.safe_dump(to_dict(DeviceConfig()), sort_keys=False)
