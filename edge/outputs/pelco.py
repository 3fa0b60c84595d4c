"""Pelco-D PTZ heads: speed commands, resent on change, explicit stop."""

from __future__ import annotations

from edge.gimbal.protocols import pelco_d
from edge.io.serial_link import SerialLink, SerialOutputBase


class PelcoDOutput(SerialOutputBase):
    name = "pelco_d"

    def __init__(self, cfg, *, max_rate_dps: float = 60.0, link: SerialLink | None = None) -> None:
        self.address = cfg.address
        self.max_rate_dps = max_rate_dps
        self.link = link or SerialLink(cfg.port, cfg.baud)
        self._last = None

    def send(self, update) -> None:
        cmd = update.command
        frame = (pelco_d.speed_command(self.address, cmd.yaw_rate_dps, cmd.pitch_rate_dps, self.max_rate_dps)
                 if cmd.active else pelco_d.stop(self.address))
        if frame != self._last:   # speed commands latch in the head: send changes only
            if self.link.write(frame):
                self._last = frame

    def heartbeat(self, now_ms: int, state: str) -> None:
        pass

    def stop(self) -> None:
        try:
            self.link.write(pelco_d.stop(self.address))
            self._last = pelco_d.stop(self.address)
        except Exception:
            pass
