"""Where tracking results go: gimbals, box streams to a microcontroller, logs.

Every output implements ``Output``: ``send(update)`` once per processed frame, ``heartbeat(now)``
when no frame is being processed, ``stop()`` to hold/neutral (never raises), ``close()``
(idempotent, stops first). Build them from config with ``open_outputs``.
"""

from __future__ import annotations

from edge.outputs.base import ControlUpdate, Output


def open_output(cfg, control_cfg=None) -> Output:
    kind = cfg.type
    if kind in ("serial_box", "serial_nmea"):
        from edge.outputs.box_stream import BoxStreamOutput

        return BoxStreamOutput(cfg, ascii=kind == "serial_nmea")
    if kind == "simplebgc":
        from edge.outputs.simplebgc import SimpleBGCOutput

        return SimpleBGCOutput(cfg, control_cfg)
    if kind == "pelco_d":
        from edge.outputs.pelco import PelcoDOutput

        return PelcoDOutput(cfg, max_rate_dps=control_cfg.max_rate_dps if control_cfg else 60.0)
    if kind == "mavlink":
        from edge.outputs.mavlink import MavlinkGimbalOutput

        return MavlinkGimbalOutput(cfg)
    if kind == "pwm":
        from edge.outputs.pwm import PwmServoOutput

        return PwmServoOutput(cfg, control_cfg)
    if kind == "pca9685":
        from edge.outputs.pca9685 import Pca9685ServoOutput

        return Pca9685ServoOutput(cfg, control_cfg)
    if kind == "log":
        from edge.outputs.base import LogOutput

        return LogOutput()
    from edge.errors import ConfigError

    raise ConfigError(f"unknown output type '{kind}'")


def open_outputs(cfgs, control_cfg=None) -> list[Output]:
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


__all__ = ["ControlUpdate", "Output", "open_output", "open_outputs"]
