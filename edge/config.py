"""One typed, validated configuration for a device, loaded from YAML.

Every section is a dataclass with defaults; unknown keys, wrong types and out-of-range values are
refused at load with one line naming the key (``outputs[1].port: expected a string, got 3``).
``edge-track config show`` prints the defaults, ``edge-track config check FILE`` validates.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.errors import ConfigError


def _range(lo=None, hi=None, *, open_lo=False):
    return {"lo": lo, "hi": hi, "open_lo": open_lo}


def num(default, lo=None, hi=None, *, open_lo=False, doc=""):
    return field(default=default, metadata={"range": _range(lo, hi, open_lo=open_lo), "doc": doc})


@dataclass
class CameraConfig:
    source: str = "0"                  # camera index, /dev/videoN, file, folder, URL, GStreamer pipeline, "picamera2"
    width: int = num(640, 16, 8192)
    height: int = num(480, 16, 8192)
    fps: float = num(30.0, 0.1, 1000.0)
    # Field of view used for pixel -> angle when no calibration file is given.
    hfov_deg: float = num(62.2, 1.0, 179.0)
    vfov_deg: float = num(48.8, 1.0, 179.0)
    calibration: str = ""              # intrinsics YAML from `edge-track calibrate intrinsics`
    reconnect_initial_s: float = num(0.5, 0.01, 60.0)
    reconnect_max_s: float = num(10.0, 0.1, 600.0)
    frame_timeout_s: float = num(2.0, 0.05, 60.0)   # no frame for this long: LOST + stop
    loop_file: bool = False            # replay a video file / folder forever (demos, soak tests)
    start_timeout_s: float = num(30.0, 0.1, 600.0)  # live camera: wait this long for a first frame


@dataclass
class ModelConfig:
    path: str = ""                     # .onnx / .tflite / .engine; empty: the bundled model
    engine: str = ""                   # empty: by file ending
    threads: int = num(0, 0, 256)      # 0: physical cores
    search_factor: float = num(0.0, 0.0, 20.0)      # 0: from the model
    update_interval: int = num(0, 0, 100000)        # 0: from the model


@dataclass
class TrackingConfig:
    init: str = ""                     # "x,y,w,h" or "center:WxH"; empty: wait for a command
    lost_score: float = num(0.25, 0.0, 1.0)
    lost_frames: int = num(5, 1, 10000)
    # While LOST the search region grows by this factor per frame, up to max_search_factor.
    widen_step: float = num(1.15, 1.0, 3.0)
    max_search_factor: float = num(9.0, 1.0, 30.0)


@dataclass
class ControlConfig:
    mode: Literal["rate", "angle"] = "rate"
    kp: float = num(2.0, 0.0, 1000.0)              # (deg/s) per deg of error
    ki: float = num(0.2, 0.0, 1000.0)
    feedforward: float = num(1.0, 0.0, 2.0)         # fraction of the target's estimated angular rate
    deadband_deg: float = num(0.3, 0.0, 45.0)
    max_rate_dps: float = num(60.0, 0.1, 2000.0)
    max_accel_dps2: float = num(240.0, 0.1, 100000.0)
    integral_limit_deg_s: float = num(20.0, 0.0, 10000.0)
    invert_pan: bool = False
    invert_tilt: bool = False
    pan_limits_deg: list = field(default_factory=lambda: [-180.0, 180.0])
    tilt_limits_deg: list = field(default_factory=lambda: [-90.0, 90.0])
    latency_s: float = num(0.0, 0.0, 2.0)           # measured by `calibrate latency`
    # The head as measured by `calibrate gimbal`: real rate / commanded rate, camera roll on the head.
    rate_gain_pan: float = num(1.0, 0.05, 20.0)
    rate_gain_tilt: float = num(1.0, 0.05, 20.0)
    roll_offset_deg: float = num(0.0, -180.0, 180.0)
    # A gimbal profile YAML written by `edge-track calibrate gimbal|latency|pid`: its keys
    # override the ones above.
    profile: str = ""


@dataclass
class OutputConfig:
    type: Literal["serial_box", "serial_nmea", "simplebgc", "mavlink", "pelco_d", "pwm", "pca9685", "log"] = "log"
    port: str = ""                     # serial device or MAVLink URL (udpout:host:port, /dev/ttyACM0)
    baud: int = num(115200, 300, 4000000)
    address: int = num(1, 0, 255)      # Pelco-D camera address
    system_id: int = num(1, 1, 255)
    component_id: int = num(191, 1, 255)
    pan_pin: int = num(12, 0, 64)      # PWM (BCM numbering)
    tilt_pin: int = num(13, 0, 64)
    pin_factory: str = ""              # gpiozero factory: lgpio, pigpio, mock, ...
    i2c_bus: int = num(1, 0, 32)       # PCA9685 (pan_pin / tilt_pin are its channels)
    i2c_address: int = num(0x40, 0, 127)
    heartbeat_hz: float = num(5.0, 0.1, 100.0)
    control_timeout_ms: int = num(500, 0, 65535)    # SimpleBGC dead-man timeout
    enabled: bool = True


@dataclass
class TelemetryConfig:
    track_log: str = ""                # JSONL path; empty: none
    track_log_max_mb: float = num(50.0, 0.01, 100000.0)   # rotate at this size...
    track_log_keep: int = num(3, 0, 100)                   # ...keeping this many old files (.1, .2, ...)
    record: str = ""                   # annotated video path; empty: none
    status_interval_s: float = num(5.0, 0.1, 3600.0)


@dataclass
class WebConfig:
    enabled: bool = False
    bind: str = "127.0.0.1"            # another address requires the token (printed at start)
    port: int = num(8080, 0, 65535)
    max_fps: float = num(8.0, 0.5, 60.0)            # live view rate cap
    jpeg_quality: int = num(70, 10, 95)
    max_width: int = num(960, 64, 4096)             # live view is downscaled to this width
    state_dir: str = ""                # where the token file lives; empty: $STATE_DIRECTORY or ~/.local/state/edge-track


@dataclass
class DeviceConfig:
    camera: CameraConfig = field(default_factory=CameraConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    outputs: list[OutputConfig] = field(default_factory=list)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    web: WebConfig = field(default_factory=WebConfig)


# -- loading -----------------------------------------------------------------------------------

def _type_name(tp) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(value: Any, tp, where: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if item_tp is Any:
            return list(value)
        return [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls, raw, where: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        near = ", ".join(fields)
        raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: unknown key (valid: {near})")
    kwargs = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        converted = _convert(value, hints[name], key)
        rng = fields[name].metadata.get("range")
        if rng and isinstance(converted, (int, float)):
            lo, hi = rng["lo"], rng["hi"]
            if (lo is not None and converted < lo) or (hi is not None and converted > hi):
                raise ConfigError(f"{key}: {converted!r} is out of range [{lo}, {hi}]")
        kwargs[name] = converted
    obj = cls(**kwargs)
    _check(obj, where)
    return obj


def _check(obj, where: str) -> None:
    """Cross-field rules."""
    prefix = f"{where}." if where else ""
    if isinstance(obj, ControlConfig):
        for name in ("pan_limits_deg", "tilt_limits_deg"):
            value = getattr(obj, name)
            if (len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                    or not value[0] < value[1]):
                raise ConfigError(f"{prefix}{name}: expected [min, max] with min < max, got {value!r}")
    if isinstance(obj, CameraConfig) and obj.reconnect_initial_s > obj.reconnect_max_s:
        raise ConfigError(f"{prefix}reconnect_initial_s: must not exceed reconnect_max_s")
    if isinstance(obj, OutputConfig) and obj.type in ("serial_box", "serial_nmea", "simplebgc", "pelco_d", "mavlink") \
            and obj.enabled and not obj.port:
        raise ConfigError(f"{prefix}port: required for output type {obj.type}")


def build_dataclass(cls, raw, where: str = ""):
    """Any dataclass from a mapping with the same checks as the device config (types, ranges,
    unknown keys), errors naming the key. Used by the training configs too."""
    return _build(cls, raw, where)


def load_config(data: dict | None) -> DeviceConfig:
    cfg = _build(DeviceConfig, data or {}, "")
    if cfg.control.profile:
        cfg.control = apply_profile(cfg.control, cfg.control.profile)
    return cfg


def apply_profile(control: ControlConfig, path: str) -> ControlConfig:
    """The control section with a calibration profile's keys laid over it (validated the same way)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ConfigError(f"control.profile: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"control.profile: {path} is not valid YAML") from None
    if not isinstance(data, dict) or not isinstance(data.get("control", {}), dict):
        raise ConfigError(f"control.profile: {path} must hold a 'control' mapping")
    merged = {**dataclasses.asdict(control), **data.get("control", {}), "profile": path}
    try:
        return _build(ControlConfig, merged, "control")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_config_file(path: str) -> DeviceConfig:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    try:
        return load_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(config: DeviceConfig) -> dict:
    return dataclasses.asdict(config)


def dump_defaults() -> str:
    import yaml

    example = DeviceConfig(outputs=[OutputConfig()])
    return yaml.safe_dump(to_dict(example), sort_keys=False)


_ = types  # keep the import for typing.get_type_hints on 3.10 unions
