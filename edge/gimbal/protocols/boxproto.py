"""edge-track's own box stream to a microcontroller: binary frames and an NMEA-style ASCII twin.

Binary frame (little-endian), 31 bytes::

    0   0xAA 0x55         sync
    2   u8   length       bytes from `version` to the end of `score` (= 26)
    3   u8   version      1
    4   u8   type         1 TRACK, 2 HEARTBEAT (sent when idle, so the receiver can fail safe)
    5   u16  seq          wraps at 65536
    7   u32  t_ms         sender's monotonic clock, ms, wraps
    11  u8   state        0 IDLE, 1 TRACKING, 2 LOST
    12  i16  x, y, w, h   box in pixels (top-left, size), clamped to int16
    20  i16  nx, ny       box centre relative to the image centre, -1..1 scaled by 32767
    24  u16  nw, nh       box size / image size, 0..1 scaled by 65535
    28  u8   score        0..1 scaled by 255
    29  u16  crc          CRC-16/CCITT-FALSE over bytes 2..28

ASCII line: ``$EDTRK,seq,state,x,y,w,h,nx,ny,score,t_ms*HH\\r\\n`` with HH the XOR of the bytes
between ``$`` and ``*`` (as NMEA 0183), state as a word (IDLE/TRACKING/LOST), heartbeats as
``$EDHBT,seq,state,t_ms*HH``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from edge.gimbal.protocols.crc import crc16_ccitt

SYNC = b"\xAA\x55"
VERSION = 1
TYPE_TRACK, TYPE_HEARTBEAT = 1, 2
STATES = {"IDLE": 0, "TRACKING": 1, "LOST": 2}
STATE_NAMES = {v: k for k, v in STATES.items()}
_BODY = struct.Struct("<BBHIBhhhhhhHHB")   # version .. score
LENGTH = _BODY.size                           # 26
FRAME_SIZE = 2 + 1 + LENGTH + 2               # 31
PIXEL_LIMIT = 32767                           # boxes travel as int16 pixels
MAX_COMMAND_LINE = 96                         # "$EDSEL,x,y,w,h*HH\r" with room for long decimals


@dataclass(frozen=True)
class BoxMessage:
    type: int
    seq: int
    t_ms: int
    state: str
    box_px: tuple[int, int, int, int] = (0, 0, 0, 0)
    center_norm: tuple[float, float] = (0.0, 0.0)
    size_norm: tuple[float, float] = (0.0, 0.0)
    score: float = 0.0


def _clip(v, lo, hi):
    return max(lo, min(hi, v))


def make_message(seq: int, t_ms: int, state: str, box=None, frame_size=None, score: float = 0.0,
                 heartbeat: bool = False) -> BoxMessage:
    """Build a message from a tracker box (x, y, w, h) in a (width, height) frame."""
    if heartbeat or box is None or frame_size is None:
        return BoxMessage(TYPE_HEARTBEAT if heartbeat else TYPE_TRACK, seq & 0xFFFF, t_ms & 0xFFFFFFFF, state)
    width, height = frame_size
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return BoxMessage(
        type=TYPE_TRACK, seq=seq & 0xFFFF, t_ms=t_ms & 0xFFFFFFFF, state=state,
        box_px=tuple(int(_clip(round(v), -32768, 32767)) for v in box),
        center_norm=(_clip((cx - width / 2) / (width / 2), -1.0, 1.0),
                     _clip((cy - height / 2) / (height / 2), -1.0, 1.0)),
        size_norm=(_clip(w / width, 0.0, 1.0), _clip(h / height, 0.0, 1.0)),
        score=_clip(score, 0.0, 1.0),
    )


def encode(msg: BoxMessage) -> bytes:
    body = _BODY.pack(VERSION, msg.type, msg.seq & 0xFFFF, msg.t_ms & 0xFFFFFFFF, STATES[msg.state],
                      *msg.box_px, round(msg.center_norm[0] * 32767), round(msg.center_norm[1] * 32767),
                      round(msg.size_norm[0] * 65535), round(msg.size_norm[1] * 65535), round(msg.score * 255))
    head = bytes([LENGTH]) + body
    return SYNC + head + struct.pack("<H", crc16_ccitt(head))


class BoxParser:
    """Incremental decoder: feed any chunks, get whole messages; garbage and bad CRCs are skipped."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.crc_errors = 0
        self.dropped_bytes = 0

    def feed(self, data: bytes) -> list[BoxMessage]:
        self._buf += data
        out = []
        while True:
            start = self._buf.find(SYNC)
            if start < 0:
                keep = 1 if self._buf[-1:] == SYNC[:1] else 0
                self.dropped_bytes += len(self._buf) - keep
                del self._buf[:len(self._buf) - keep]
                return out
            if start:
                self.dropped_bytes += start
                del self._buf[:start]
            if len(self._buf) < 3:
                return out
            if self._buf[2] != LENGTH:
                self.dropped_bytes += 1
                del self._buf[:1]
                continue
            if len(self._buf) < FRAME_SIZE:
                return out
            frame = bytes(self._buf[:FRAME_SIZE])
            (crc,) = struct.unpack_from("<H", frame, FRAME_SIZE - 2)
            if crc != crc16_ccitt(frame[2:FRAME_SIZE - 2]) or frame[3] != VERSION:
                self.crc_errors += 1
                del self._buf[:1]        # resync on the next sync pattern
                continue
            del self._buf[:FRAME_SIZE]
            f = _BODY.unpack_from(frame, 3)
            out.append(BoxMessage(type=f[1], seq=f[2], t_ms=f[3], state=STATE_NAMES.get(f[4], "IDLE"),
                                  box_px=tuple(f[5:9]), center_norm=(f[9] / 32767, f[10] / 32767),
                                  size_norm=(f[11] / 65535, f[12] / 65535), score=f[13] / 255))


# -- ASCII ---------------------------------------------------------------------------------------

def nmea_checksum(body: str) -> int:
    """XOR of the bytes between ``$`` and ``*`` (NMEA 0183)."""
    checksum = 0
    for ch in body.encode("ascii", errors="replace"):
        checksum ^= ch
    return checksum


def _nmea(body: str) -> bytes:
    return f"${body}*{nmea_checksum(body):02X}\r\n".encode("ascii")


def encode_ascii(msg: BoxMessage) -> bytes:
    if msg.type == TYPE_HEARTBEAT:
        return _nmea(f"EDHBT,{msg.seq},{msg.state},{msg.t_ms}")
    x, y, w, h = msg.box_px
    return _nmea(f"EDTRK,{msg.seq},{msg.state},{x},{y},{w},{h},{msg.center_norm[0]:.4f},"
                 f"{msg.center_norm[1]:.4f},{msg.score:.3f},{msg.t_ms}")


def parse_command(line: bytes):
    """A command from the microcontroller: ``$EDSEL,x,y,w,h*HH`` (pixels) -> ("select", box),
    ``$EDSTP*HH`` -> ("stop", None); anything else (a bad checksum, a non-finite number, a box
    outside the int16 pixel range the stream itself uses) -> None."""
    text = line.strip().decode("ascii", errors="replace")
    if not text.startswith("$") or "*" not in text:
        return None
    body, _, given = text[1:].partition("*")
    if given.upper() != f"{nmea_checksum(body):02X}":
        return None
    fields = body.split(",")
    if fields[0] == "EDSTP":
        return ("stop", None)
    if fields[0] == "EDSEL" and len(fields) == 5:
        try:
            x, y, w, h = (float(v) for v in fields[1:])
        except ValueError:
            return None
        # A checksum passes one garbled line in 256; finite, bounded numbers keep the gimbal out of
        # a 1e30-pixel target (the loop also checks the box against the frame).
        if all(math.isfinite(v) for v in (x, y, w, h)) and abs(x) <= PIXEL_LIMIT and abs(y) <= PIXEL_LIMIT \
                and 0 < w <= PIXEL_LIMIT and 0 < h <= PIXEL_LIMIT:
            return ("select", (x, y, w, h))
    return None


class CommandReader:
    """Incremental reader of command lines: feed any chunks, get parsed commands.

    Every ``$`` starts a new line and a line longer than MAX_COMMAND_LINE is dropped, so line
    noise of any length costs at most one line and the next valid command is always taken.
    """

    def __init__(self) -> None:
        self._line = bytearray()
        self._in_line = False
        self.rejected = 0          # complete lines that were not a valid command

    @property
    def buffered(self) -> int:
        return len(self._line)

    def feed(self, data: bytes) -> list:
        out = []
        for byte in data:
            if byte == 0x24:                              # '$'
                self._line[:] = b"$"
                self._in_line = True
            elif not self._in_line:
                continue
            elif byte == 0x0A:                            # '\n'
                parsed = parse_command(bytes(self._line))
                if parsed is not None:
                    out.append(parsed)
                else:
                    self.rejected += 1
                self._line.clear()
                self._in_line = False
            elif len(self._line) >= MAX_COMMAND_LINE:
                self._line.clear()
                self._in_line = False
            else:
                self._line.append(byte)
        return out


def encode_command(kind: str, box=None) -> bytes:
    """The microcontroller side's encoder (used by tests and host tools)."""
    if kind == "stop":
        return _nmea("EDSTP")
    x, y, w, h = box
    return _nmea(f"EDSEL,{x:g},{y:g},{w:g},{h:g}")
