"""One typed, validated configuration for a device, loaded from YAML.

Every section is a dataclass with defaults. Loading is one mechanism: each value is converted to
its field's declared type, then every rule attached to the field runs (``check(value, section)``,
raising ValueError with what is wrong); the loader names the key in one line
(``outputs[1].port: expected a string, got 3``). Unknown keys, duplicate keys, wrong types,
out-of-range values and everything ``run`` would refuse later (a target it cannot parse, a track
log it cannot write, a MAVLink port it cannot open) are refused here, so
``edge-track config check FILE`` and ``edge-track run`` reject the same files.
``edge-track config show`` prints the defaults and the choices the plug-in tables offer.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from edge.errors import ConfigError, clipped, quoted
from edge.model_meta import INT_RANGES, NUMBER_RANGES, SEARCH_FACTOR_MAX
from edge.safe_yaml import read_yaml
from edge.trackers.lost_search import LostSearchSettings

Rule = Callable[[Any, Any], None]


# The most items a list field holds unless it says (``checked(max_items=...)``): the bound is
# checked before any item is converted, so a list of a million items costs nothing to refuse.
MAX_ITEMS = 1000


def checked(*rules: Rule, default=dataclasses.MISSING, default_factory=dataclasses.MISSING,
            max_items: int = MAX_ITEMS):
    """A field whose value must also pass ``rules``: each is called as ``rule(value, section)``
    once the section is built, and raises ValueError saying what is wrong. A list field holds at
    most ``max_items``."""
    return field(default=default, default_factory=default_factory,
                 metadata={"rules": rules, "max_items": max_items})


def in_range(lo=None, hi=None) -> Rule:
    """Rule: lo <= value <= hi (either bound may be None)."""
    def rule(value, section) -> None:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{quoted(value)} is out of range [{lo}, {hi}]")
    return rule


def num(default, lo=None, hi=None):
    """A number field with an inclusive range."""
    return checked(in_range(lo, hi), default=default)


def one_of(choices: Callable[[], typing.Iterable[str]], *, empty_ok: bool = False) -> Rule:
    """Rule: value is one of ``choices()`` (a plug-in table, read when the rule runs), or empty
    with ``empty_ok``. ``config show`` lists the choices."""
    def rule(value, section) -> None:
        allowed = list(choices())
        if value not in allowed and not (empty_ok and value == ""):
            raise ValueError(f"must be one of {', '.join(allowed)}, got {quoted(value)}")
    rule.choices = choices
    return rule


def _ascending_pair(value, section) -> None:
    if len(value) != 2 or not value[0] < value[1]:
        raise ValueError(f"expected [min, max] with min < max, got {quoted(value)}")


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
    from edge.nanotrack_files import find_files
    from edge.trackers.catalog import resolve

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


# -- output types: the schema's side ------------------------------------------------------------
# What each output type's ``port`` must be: a rule raising ValueError (one line) for a port the
# type can never open, or None for a type without a port. The registry in edge/outputs opens the
# same types (the tests hold the two tables to the same names, in the same order); the schema
# imports none of it, so no arrow runs from the schema up to the outputs that read it.

def _serial_device(port: str) -> None:
    """Serial devices are not looked for here: a USB adapter may appear after boot."""


MAVLINK_NETWORK_SCHEMES = ("udpin", "udpout", "udpbcast", "udp", "tcpin", "tcp")


def check_mavlink_port(port: str) -> None:
    """Refuse a MAVLink port that cannot be opened, without opening it: ``SCHEME:HOST:PORT`` for
    udpin/udpout/udpbcast/udp/tcpin/tcp, otherwise a serial device (``/dev/ttyACM0``, optionally
    ``,BAUD``). A serial device is not looked for: like the other serial outputs' adapters, it may
    appear after boot (the output waits for it). Raises ConfigError with one line."""
    shown = quoted(port)
    scheme, sep, rest = port.partition(":")
    if sep and scheme in MAVLINK_NETWORK_SCHEMES:
        host, sep, number = rest.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"mavlink port {shown}: expected {scheme}:HOST:PORT")
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise ConfigError(f"mavlink port {shown}: {quoted(number)} is not a port number (1-65535)")
        return
    if os.path.exists(port):
        return   # an existing path: pymavlink opens it whole, commas and all
    device, comma, baud = port.partition(",")   # pymavlink's "DEVICE,BAUD"
    if not device or (comma and not baud.isdigit()):
        raise ConfigError(f"mavlink port {shown}: expected a serial device (DEVICE or DEVICE,BAUD) "
                          "or SCHEME:HOST:PORT")


# The gpiozero pin factories the pwm output can name (edge/outputs/pwm.py FACTORIES; a test holds them alike).
PIN_FACTORIES = ("lgpio", "pigpio", "rpigpio", "mock")

OUTPUT_PORTS: dict[str, Callable[[str], None] | None] = {
    "serial_box": _serial_device,
    "serial_nmea": _serial_device,
    "simplebgc": _serial_device,
    "mavlink": check_mavlink_port,
    "pelco_d": _serial_device,
    "pwm": None,
    "pca9685": None,
    "log": None,
}


def _output_types():
    return list(OUTPUT_PORTS)


def _output_port(value: str, section) -> None:
    port = OUTPUT_PORTS[section.type]
    if port is None or not section.enabled:
        return
    if not value:
        raise ValueError(f"required for output type {section.type}")
    port(value)


def _target(text: str) -> None:
    from edge.target import check_target

    check_target(text)


def _writable_file(path: str) -> None:
    from edge.paths import check_writable_file

    check_writable_file(path)


def _video_file(path: str) -> None:
    from edge.video_out import check_video_path

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
    pan_limits_deg: list[float] = checked(_ascending_pair, default_factory=lambda: [-180.0, 180.0], max_items=2)
    tilt_limits_deg: list[float] = checked(_ascending_pair, default_factory=lambda: [-90.0, 90.0], max_items=2)
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
    type: str = checked(one_of(_output_types), default="log")   # OUTPUT_PORTS above
    # serial device or MAVLink URL (udpout:host:port, /dev/ttyACM0); required by the types that talk
    port: str = checked(_output_port, default="")
    baud: int = num(115200, 300, 4000000)
    address: int = num(1, 0, 255)      # Pelco-D camera address
    system_id: int = num(1, 1, 255)
    component_id: int = num(191, 1, 255)
    # MAVLink: the camera protocol's component (100-105 are MAVLink's camera ids); 0: none
    camera_component_id: int = num(100, 0, 255)
    pan_pin: int = num(12, 0, 64)      # PWM (BCM numbering)
    tilt_pin: int = num(13, 0, 64)
    # gpiozero pin factory; empty: gpiozero picks the first that works
    pin_factory: str = checked(one_of(lambda: PIN_FACTORIES, empty_ok=True), default="")
    i2c_bus: int = num(1, 0, 32)       # PCA9685 (pan_pin / tilt_pin are its channels)
    i2c_address: int = num(0x40, 0, 127)
    heartbeat_hz: float = num(5.0, 0.1, 100.0)
    control_timeout_ms: int = num(500, 0, 65535)    # SimpleBGC dead-man timeout
    enabled: bool = True


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
    outputs: list[OutputConfig] = checked(_something_to_drive, default_factory=lambda: [OutputConfig()],
                                          max_items=MAX_OUTPUTS)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    web: WebConfig = field(default_factory=WebConfig)


# -- loading -----------------------------------------------------------------------------------

def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _convert(value: Any, tp, where: str, *, item: bool = False, max_items: int = MAX_ITEMS):
    """``value`` as type ``tp`` (a dataclass, Literal, list, list[X], bool, int, float, str or
    Any), or ConfigError naming ``where``. A section left empty in YAML (None) is its defaults;
    an empty list item is an error; a list holds at most ``max_items``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None and not item:
            value = {}
        return _build(tp, value, where)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, allowed))}, got {quoted(value)}")
        return value
    if tp is list or origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {quoted(value)}")
        if len(value) > max_items:
            raise ConfigError(f"{where}: at most {max_items} items, got {len(value)}")
        return [_convert(v, item_tp, f"{where}[{i}]", item=True) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {quoted(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {quoted(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {quoted(value)}")
        try:
            finite = math.isfinite(value)
        except OverflowError:   # an integer with hundreds of digits has no float
            raise ConfigError(f"{where}: expected a number, got an integer too large for a float") from None
        if not finite:
            raise ConfigError(f"{where}: expected a number, got {quoted(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            # YAML reads a bare 0 (a camera index, a port number) as a number: say how to write it.
            hint = f' (quote it: "{value}")' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            raise ConfigError(f"{where}: expected a string, got {quoted(value)}{hint}")
        return value
    # A schema mistake, not a user's: every field type must be one the loader checks.
    raise TypeError(f"{where}: the config loader has no check for type {tp!r}")


def _build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {quoted(raw)}")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise ConfigError(f"{_key(where, clipped(str(unknown[0]), 60))}: unknown key (valid: {', '.join(names)})")
    limits = {f.name: f.metadata.get("max_items", MAX_ITEMS) for f in fields}
    obj = cls(**{name: _convert(value, hints[name], _key(where, name), max_items=limits[name])
                 for name, value in raw.items()})
    for f in fields:
        for rule in f.metadata.get("rules", ()):
            try:
                rule(getattr(obj, f.name), obj)
            except ValueError as exc:   # a rule may quote the value it refuses: cut it
                raise ConfigError(f"{_key(where, f.name)}: {clipped(str(exc))}") from None
    return obj


def build_dataclass(cls, raw, where: str = ""):
    """Any dataclass from a mapping with the same checks as the device config (types, rules,
    unknown keys), errors naming the key. Used by the training configs too."""
    return _build(cls, raw, where)


def load_config(data: dict | None) -> DeviceConfig:
    """A DeviceConfig from parsed YAML (None: all defaults), with ``control.profile`` laid over
    the control section; ConfigError (one line, naming the key) for anything ``run`` would refuse."""
    cfg = _build(DeviceConfig, {} if data is None else data, "")
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
        return _build(ControlConfig, merged, "control")
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


def _choices(cls, where: str = ""):
    """(key, choices) for every field of ``cls`` (and its sections) with a ``one_of`` rule."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = _key(where, f.name)
        tp = hints[f.name]
        if typing.get_origin(tp) is list:
            tp, key = typing.get_args(tp)[0], f"{key}[]"
        if dataclasses.is_dataclass(tp):
            yield from _choices(tp, key)
        for rule in f.metadata.get("rules", ()):
            if hasattr(rule, "choices"):
                yield key, list(rule.choices())


def dump_defaults() -> str:
    """The default configuration as YAML (its one output: log), headed by comments listing the
    choices the plug-in tables offer (the same tables ``config check`` reads)."""
    import yaml

    from edge.camera import SOURCES

    lines = ["# edge-track device configuration: the defaults. Choices:",
             f"#   camera.source: {', '.join(kind.name for kind in SOURCES)}"]
    lines += [f"#   {key}: {', '.join(choices)}" for key, choices in _choices(DeviceConfig)]
    return "\n".join(lines) + "\n" + yaml.safe_dump(to_dict(DeviceConfig()), sort_keys=False)
