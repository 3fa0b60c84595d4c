"""SimpleBGC (BaseCam) gimbals: CMD_CONTROL speed mode at the tracker rate."""

from __future__ import annotations

from edge.control.integrator import RateIntegrator
from edge.gimbal.protocols import simplebgc
from edge.io.serial_link import SerialLink, SerialOutputBase


class SimpleBGCOutput(SerialOutputBase):
    """Speed mode by default; with ``control.mode: angle`` the rates are integrated into angle
    set-points (CMD_CONTROL angle mode), for boards tuned for position moves."""

    name = "simplebgc"

    def __init__(self, cfg, control_cfg=None, *, link: SerialLink | None = None) -> None:
        self.link = link or SerialLink(cfg.port, cfg.baud)
        self.angles = (RateIntegrator(control_cfg.pan_limits_deg, control_cfg.tilt_limits_deg)
                       if control_cfg is not None and control_cfg.mode == "angle" else None)

    def send(self, update) -> None:
        cmd = update.command
        if self.angles is not None:
            pan, tilt = self.angles.update(cmd)
            self.link.write(simplebgc.control_angle(pan, tilt))
        elif cmd.active:
            self.link.write(simplebgc.control_speed(cmd.yaw_rate_dps, cmd.pitch_rate_dps))
        else:
            self.link.write(simplebgc.control_speed(0.0, 0.0))

    def _hold(self) -> None:
        if self.angles is not None:
            self.angles.hold()
            self.link.write(simplebgc.control_angle(self.angles.pan_deg, self.angles.tilt_deg))
        else:
            self.link.write(simplebgc.control_speed(0.0, 0.0))

    def heartbeat(self, now_ms: int, state: str) -> None:
        # No frames: keep the gimbal holding; its control timeout stops it if we die.
        self._hold()

    def stop(self) -> None:
        try:
            self._hold()
        except Exception:
            pass

    def recenter(self) -> None:
        if self.angles is not None:
            self.angles.pan_deg = self.angles.tilt_deg = 0.0
        self.link.write(simplebgc.control_angle(0.0, 0.0))

    def _before_close(self) -> None:
        self.link.write(simplebgc.release())
