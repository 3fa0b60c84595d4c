"""Where tracking results go: gimbals, box streams to a microcontroller, logs.

Every output implements ``Output``: ``send(update)`` once per processed frame, ``heartbeat(now)``
when no frame is being processed, ``stop()`` to hold/neutral (never raises), ``close()``
(idempotent, stops first). Build them from config with ``open_outputs``.

Each output is a plug-in in its own module: its settings (the dataclass its YAML item's ``type:``
picks, with its port's rule), how it opens, the library it needs and what preflight tries
(``OutputKind``); ``OUTPUTS`` lists them, and the config schema reads this one table. Adding a type
is its module plus one line here. The modules import their libraries (pymavlink, gpiozero, smbus2,
pyserial) only when an output opens, so a Pi without one still starts with the other outputs.
"""

from __future__ import annotations

import importlib

from edge.errors import ConfigError
from edge.outputs.base import LOG, OUTPUTS, ControlUpdate, Output, OutputConfig, OutputKind
from edge.outputs.box_stream import SERIAL_BOX, SERIAL_NMEA
from edge.outputs.mavlink import MAVLINK
from edge.outputs.pca9685 import PCA9685_BOARD
from edge.outputs.pelco import PELCO_D
from edge.outputs.pwm import PWM
from edge.outputs.simplebgc import SIMPLEBGC

OUTPUTS.update({
    "serial_box": SERIAL_BOX,
    "serial_nmea": SERIAL_NMEA,
    "simplebgc": SIMPLEBGC,
    "mavlink": MAVLINK,
    "pelco_d": PELCO_D,
    "pwm": PWM,
    "pca9685": PCA9685_BOARD,
    "log": LOG,
})


def _kind(cfg) -> OutputKind:
    try:
        return OUTPUTS[cfg.type]
    except KeyError:
        raise ConfigError(f"unknown output type '{cfg.type}' (valid: {', '.join(OUTPUTS)})") from None


def open_output(cfg, control_cfg=None) -> Output:
    """The output ``cfg.type`` names, opened on ``cfg`` (its OutputConfig); ConfigError for a type
    not in ``OUTPUTS``."""
    return _kind(cfg).open(cfg, control_cfg)


def open_outputs(cfgs, control_cfg=None) -> list[Output]:
    """Every enabled output of ``cfgs``, opened in order; if one fails, those already open are
    closed before the error propagates."""
    opened = []
    try:
        for cfg in cfgs:
            if cfg.enabled:
                opened.append(open_output(cfg, control_cfg))
    except Exception:
        for out in opened:   # each stopped and closed, whatever another one's close does
            try:
                out.close()
            except Exception:
                pass
        raise
    return opened


def check_outputs(cfgs) -> None:
    """What opening each enabled output needs, short of opening it: its library (``needs``), then
    its own ``check``. ConfigError naming the first output that would fail; the outputs import
    their libraries lazily, so without this a missing one showed only when ``run`` opened it."""
    for i, cfg in enumerate(cfgs):
        if not cfg.enabled:
            continue
        kind = _kind(cfg)
        if kind.needs is not None:
            try:
                importlib.import_module(kind.needs.module)
            except Exception as exc:   # ImportError, or a broken install failing inside its own import
                detail = "" if isinstance(exc, ImportError) else f" ({type(exc).__name__}: {exc})"
                raise kind.needs.missing(f"outputs[{i}] ({cfg.type})", detail) from None
        if kind.check is not None:
            try:
                kind.check(cfg)
            except ConfigError as exc:
                raise ConfigError(f"outputs[{i}] ({cfg.type}): {exc}") from None


__all__ = ["ControlUpdate", "OUTPUTS", "Output", "OutputConfig", "OutputKind", "check_outputs", "open_output",
           "open_outputs"]
