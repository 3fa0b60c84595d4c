"""Where tracking results go: gimbals, box streams to a microcontroller, logs.

Every output implements ``Output``: ``send(update)`` once per processed frame, ``heartbeat(now)``
when no frame is being processed, ``stop()`` to hold/neutral (never raises), ``close()``
(idempotent, stops first). Build them from config with ``open_outputs``.

``OUTPUTS`` is the one table of output types: the config's ``outputs[].type`` choices, its
``port`` rules and ``open_output`` all read it. Adding a type is its module plus one line here.
Each opener imports its module only when called, so a Pi without pymavlink (or gpiozero, smbus2)
still starts with the other outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edge.errors import ConfigError
from edge.outputs.base import ControlUpdate, Output


@dataclass(frozen=True)
class OutputKind:
    """One output type: ``open(cfg, control_cfg) -> Output``, and what its ``port`` must be:
    ``port`` is None when the type has no port, else ``port(text)`` raises ValueError (one line)
    for a port it can never open; an empty port is refused for every type that has one."""

    open: Callable[..., Output]
    port: Callable[[str], None] | None = None


def _any_device(port: str) -> None:
    """Serial devices are not looked for here: a USB adapter may appear after boot."""


def _mavlink_port(port: str) -> None:
    from edge.outputs.mavlink import check_port

    check_port(port)


def _box_stream(cfg, control_cfg):
    from edge.outputs.box_stream import BoxStreamOutput

    return BoxStreamOutput(cfg, ascii=cfg.type == "serial_nmea")


def _simplebgc(cfg, control_cfg):
    from edge.outputs.simplebgc import SimpleBGCOutput

    return SimpleBGCOutput(cfg, control_cfg)


def _pelco_d(cfg, control_cfg):
    from edge.outputs.pelco import PelcoDOutput

    return PelcoDOutput(cfg, max_rate_dps=control_cfg.max_rate_dps if control_cfg else 60.0)


def _mavlink(cfg, control_cfg):
    from edge.outputs.mavlink import MavlinkGimbalOutput

    return MavlinkGimbalOutput(cfg)


def _pwm(cfg, control_cfg):
    from edge.outputs.pwm import PwmServoOutput

    return PwmServoOutput(cfg, control_cfg)


def _pca9685(cfg, control_cfg):
    from edge.outputs.pca9685 import Pca9685ServoOutput

    return Pca9685ServoOutput(cfg, control_cfg)


def _log(cfg, control_cfg):
    from edge.outputs.base import LogOutput

    return LogOutput()


OUTPUTS: dict[str, OutputKind] = {
    "serial_box": OutputKind(_box_stream, port=_any_device),
    "serial_nmea": OutputKind(_box_stream, port=_any_device),
    "simplebgc": OutputKind(_simplebgc, port=_any_device),
    "mavlink": OutputKind(_mavlink, port=_mavlink_port),
    "pelco_d": OutputKind(_pelco_d, port=_any_device),
    "pwm": OutputKind(_pwm),
    "pca9685": OutputKind(_pca9685),
    "log": OutputKind(_log),
}


def open_output(cfg, control_cfg=None) -> Output:
    """The output ``cfg.type`` names, opened on ``cfg`` (an OutputConfig); ConfigError for a type
    not in ``OUTPUTS``."""
    try:
        kind = OUTPUTS[cfg.type]
    except KeyError:
        raise ConfigError(f"unknown output type '{cfg.type}' (valid: {', '.join(OUTPUTS)})") from None
    return kind.open(cfg, control_cfg)


def open_outputs(cfgs, control_cfg=None) -> list[Output]:
    """Every enabled output of ``cfgs``, opened in order; if one fails, those already open are
    closed before the error propagates."""
    opened = []
    try:
        for cfg in cfgs:
            if cfg.enabled:
                opened.append(open_output(cfg, control_cfg))
    except Exception:
        for out in opened:
            out.close()
        raise
    return opened


__all__ = ["ControlUpdate", "OUTPUTS", "Output", "OutputKind", "open_output", "open_outputs"]
