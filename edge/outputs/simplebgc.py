"""SimpleBGC (BaseCam) gimbals: CMD_CONTROL speed mode at the tracker rate."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.control.integrator import RateIntegrator
from edge.gimbal.protocols import simplebgc
from edge.io.libraries import PYSERIAL
from edge.outputs.base import OutputKind, output_type
from edge.outputs.driver import HeadDriver
from edge.outputs.transport import SerialLink, SerialPortConfig
from edge.schema import num


@dataclass
class SimpleBGCConfig(SerialPortConfig):
    type: str = output_type("simplebgc")
    control_timeout_ms: int = num(500, 0, 65535)    # SimpleBGC dead-man timeout


HOLD_SPEED = simplebgc.control_speed(0.0, 0.0)


class SimpleBGCOutput(HeadDriver):
    """Speed mode by default; with ``control.mode: angle`` the rates are integrated into angle
    set-points (CMD_CONTROL angle mode), for boards tuned for position moves.

    CMD_CONTROL is streamed, a frame per call, for the board's control timeout (``control_timeout_ms``,
    sent as CMD_CONTROL_CONFIG on every port the link opens: a board that restarted has forgotten it).
    What a hold streams is the head's standing command: zero speed, the current set-point in angle
    mode, or 0/0 after a re-centre (until the next command), so a reconnect or a heartbeat never
    cancels a re-centre."""

    name = "simplebgc"

    def __init__(self, cfg, control_cfg=None, *, link: SerialLink | None = None, clock=time.monotonic) -> None:
        self.link = link or SerialLink(cfg.port, cfg.baud)
        self.timeout_ms = cfg.control_timeout_ms
        self._configured_on: int | None = None   # the link.connection the timeout was written on
        self.angles = (RateIntegrator(control_cfg.pan_limits_deg, control_cfg.tilt_limits_deg, clock=clock)
                       if control_cfg is not None and control_cfg.mode == "angle" else None)
        self._hold_frame = HOLD_SPEED   # speed mode: what a hold streams

    def _stream(self, frame: bytes) -> bool:
        if self._configured_on != self.link.connection or not self.link.connected:
            if self.link.write(simplebgc.control_config(self.timeout_ms)):
                self._configured_on = self.link.connection
        return self._command(frame, always=True)

    def send(self, update) -> None:
        cmd = update.command
        if self.angles is not None:
            self.angles.advance(cmd, lambda pan, tilt: self._stream(simplebgc.control_angle(pan, tilt)))
            return
        self._hold_frame = HOLD_SPEED
        self._stream(simplebgc.control_speed(cmd.yaw_rate_dps, cmd.pitch_rate_dps) if cmd.active else HOLD_SPEED)

    def _hold(self) -> None:
        if self.angles is not None:
            self.angles.hold()
            self._stream(simplebgc.control_angle(self.angles.pan_deg, self.angles.tilt_deg))
        else:
            self._stream(self._hold_frame)

    def heartbeat(self, now_ms: int, state: str) -> None:
        # No frames: keep the gimbal holding; the control timeout sent on open stops it if we die.
        self._hold()

    def stop(self) -> None:
        try:
            self._hold_frame = HOLD_SPEED   # a stop also ends a re-centre move
            self._hold()
        except Exception:
            pass

    def recenter(self) -> None:
        if self.angles is not None:
            self.angles.pan_deg = self.angles.tilt_deg = 0.0
        else:
            self._hold_frame = simplebgc.control_angle(0.0, 0.0)
        self._hold()

    def _before_close(self) -> None:
        self.link.write(simplebgc.release())


SIMPLEBGC = OutputKind(SimpleBGCConfig, SimpleBGCOutput, needs=PYSERIAL)
