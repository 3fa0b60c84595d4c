"""SimpleBGC (BaseCam) gimbals: CMD_CONTROL speed mode at the tracker rate."""

from __future__ import annotations

from edge.gimbal.protocols import simplebgc
from edge.io.serial_link import SerialLink


class SimpleBGCOutput:
    name = "simplebgc"

    def __init__(self, cfg, *, link: SerialLink | None = None) -> None:
        self.link = link or SerialLink(cfg.port, cfg.baud)
        self._closed = False

    def send(self, update) -> None:
        cmd = update.command
        if cmd.active:
            self.link.write(simplebgc.control_speed(cmd.yaw_rate_dps, cmd.pitch_rate_dps))
        else:
            self.link.write(simplebgc.control_speed(0.0, 0.0))

    def heartbeat(self, now_ms: int, state: str) -> None:
        # No frames: keep the gimbal holding; its control timeout stops it if we die.
        self.link.write(simplebgc.control_speed(0.0, 0.0))

    def stop(self) -> None:
        try:
            self.link.write(simplebgc.control_speed(0.0, 0.0))
        except Exception:
            pass

    def close(self) -> None:
        if not self._closed:
            self.stop()
            self.link.write(simplebgc.release())
            self._closed = True
            self.link.close()
