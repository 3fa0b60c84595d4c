"""Pelco-D PTZ heads: speed commands, sent on change and until delivered, explicit stop."""

from __future__ import annotations

from dataclasses import dataclass

from edge.gimbal.protocols import pelco_d
from edge.io.libraries import PYSERIAL
from edge.outputs.base import OutputKind, output_type
from edge.outputs.driver import HeadDriver
from edge.outputs.transport import SerialLink, SerialPortConfig
from edge.schema import num


@dataclass
class PelcoDConfig(SerialPortConfig):
    type: str = output_type("pelco_d")
    address: int = num(1, 0, 255)      # Pelco-D camera address


class PelcoDOutput(HeadDriver):
    """Speeds latch in the head, so a frame is written when it changes, and again whenever the
    head may lack it (a failed write, a reopened port): see ``HeadDriver``."""

    name = "pelco_d"

    def __init__(self, cfg, *, max_rate_dps: float = 60.0, link: SerialLink | None = None) -> None:
        self.address = cfg.address
        self.max_rate_dps = max_rate_dps
        self.link = link or SerialLink(cfg.port, cfg.baud)

    def send(self, update) -> None:
        cmd = update.command
        frame = (pelco_d.speed_command(self.address, cmd.yaw_rate_dps, cmd.pitch_rate_dps, self.max_rate_dps)
                 if cmd.active else pelco_d.stop(self.address))
        self._command(frame, moving=frame != pelco_d.stop(self.address))

    def heartbeat(self, now_ms: int, state: str) -> None:
        self._hold_still()

    def stop(self) -> None:
        try:
            self._command(pelco_d.stop(self.address))
        except Exception:
            pass


def _open(cfg: PelcoDConfig, control_cfg) -> PelcoDOutput:
    return PelcoDOutput(cfg, max_rate_dps=control_cfg.max_rate_dps if control_cfg else 60.0)


PELCO_D = OutputKind(PelcoDConfig, _open, needs=PYSERIAL)
