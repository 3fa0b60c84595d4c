"""The box stream to a microcontroller (binary or NMEA-style ASCII), over a serial port."""

from __future__ import annotations

from dataclasses import dataclass

from edge.gimbal.protocols import boxproto
from edge.io.libraries import PYSERIAL
from edge.outputs.base import MAX_READS_PER_POLL, OutputKind, output_type
from edge.outputs.driver import HeadDriver
from edge.outputs.transport import SerialLink, SerialPortConfig
from edge.schema import num


@dataclass
class BoxStreamConfig(SerialPortConfig):
    type: str = output_type("serial_box")   # serial_box: binary frames; serial_nmea: ASCII lines
    heartbeat_hz: float = num(5.0, 0.1, 100.0)   # a message at least this often when no frame is sent


class BoxStreamOutput(HeadDriver):
    def __init__(self, cfg, *, ascii: bool = False, link: SerialLink | None = None) -> None:
        self.name = "serial_nmea" if ascii else "serial_box"
        self._encode = boxproto.encode_ascii if ascii else boxproto.encode
        self.link = link or SerialLink(cfg.port, cfg.baud)
        self._seq = 0
        self._heartbeat_period_ms = 1000.0 / cfg.heartbeat_hz
        self._last_sent_ms = -1e18
        self._commands = boxproto.CommandReader()

    def _write(self, msg) -> bool:
        """True once written; a message that was not does not count as sent, so the next
        heartbeat is due at once and the receiver hears the current state when the port is back."""
        self._seq = (self._seq + 1) & 0xFFFF
        return self.link.write(self._encode(msg))

    def send(self, update) -> None:
        msg = boxproto.make_message(self._seq, update.t_ms, update.state,
                                    update.box if update.state != "IDLE" else None,
                                    update.frame_size, update.score)
        if self._write(msg):
            self._last_sent_ms = update.t_ms

    def heartbeat(self, now_ms: int, state: str) -> None:
        if now_ms - self._last_sent_ms >= self._heartbeat_period_ms:
            if self._write(boxproto.make_message(self._seq, now_ms, state, heartbeat=True)):
                self._last_sent_ms = now_ms

    def poll(self):
        """Target commands the microcontroller sent back ($EDSEL / $EDSTP lines)."""
        from edge.outputs.base import RemoteTarget

        requests = []
        for _ in range(MAX_READS_PER_POLL):
            data = self.link.read(4096)
            if not data:
                break
            for kind, box in self._commands.feed(data):
                requests.append(RemoteTarget("stop") if kind == "stop" else RemoteTarget("pixels", pixels=box))
        return requests

    def counters(self) -> dict:
        return {**super().counters(), "bad_commands": self._commands.rejected}

    def stop(self) -> None:
        # The receiver stops its servos on LOST/IDLE; say so explicitly.
        try:
            import time

            self._write(boxproto.make_message(self._seq, int(time.monotonic() * 1000), "IDLE", heartbeat=True))
        except Exception:
            pass


def _open(cfg: BoxStreamConfig, control_cfg) -> BoxStreamOutput:
    return BoxStreamOutput(cfg, ascii=cfg.type == "serial_nmea")


SERIAL_BOX = OutputKind(BoxStreamConfig, _open, needs=PYSERIAL)
SERIAL_NMEA = OutputKind(BoxStreamConfig, _open, needs=PYSERIAL)
