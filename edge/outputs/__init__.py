"""Where tracking results go: gimbals, box streams to a microcontroller, logs.

Every output implements ``Output``: ``send(update)`` once per processed frame, ``heartbeat(now)``
when no frame is being processed, ``stop()`` to hold/neutral (never raises), ``close()``
(idempotent, stops first). Build them from config with ``open_outputs``.

``OUTPUTS`` is the table of output types ``open_output`` reads; the config schema's
``edge.config.OUTPUT_PORTS`` names the same types (the tests hold the two to the same names) with
the rule each ``port`` must pass. Adding a type is its module plus one line here and one there.
Each opener imports its module only when called, so a Pi without pymavlink (or gpiozero, smbus2)
still starts with the other outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edge.errors import ConfigError
from edge.io.libraries import GPIOZERO, PYMAVLINK, PYSERIAL, SMBUS2, Library
from edge.outputs.base import ControlUpdate, Output


@dataclass(frozen=True)
class OutputKind:
    """One output type: ``open(cfg, control_cfg) -> Output``, the library it imports when it
    opens (None: nothing beyond edge-track), and ``check(cfg)``, what else its opening needs that
    can be tried without moving anything (ConfigError, one line); preflight runs both before READY=1."""

    open: Callable[..., Output]
    needs: Library | None = None
    check: Callable[..., None] | None = None


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


def _pwm_pins(cfg):
    from edge.outputs.pwm import pin_factory_for

    pin_factory_for(cfg.pin_factory)


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
    "serial_box": OutputKind(_box_stream, needs=PYSERIAL),
    "serial_nmea": OutputKind(_box_stream, needs=PYSERIAL),
    "simplebgc": OutputKind(_simplebgc, needs=PYSERIAL),
    "mavlink": OutputKind(_mavlink, needs=PYMAVLINK),
    "pelco_d": OutputKind(_pelco_d, needs=PYSERIAL),
    "pwm": OutputKind(_pwm, needs=GPIOZERO, check=_pwm_pins),
    "pca9685": OutputKind(_pca9685, needs=SMBUS2),
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
