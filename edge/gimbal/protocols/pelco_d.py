"""Pelco-D PTZ commands: 7 bytes, ``0xFF addr cmd1 cmd2 data1 data2 checksum``.

checksum = (addr + cmd1 + cmd2 + data1 + data2) mod 256; cmd2 bits 0x02 right, 0x04 left,
0x08 up, 0x10 down; data1/data2 pan/tilt speed 0x00..0x3F. Speed commands latch until the next
command, so a stop (all zero) is sent explicitly on loss and shutdown.
"""

from __future__ import annotations

RIGHT, LEFT, UP, DOWN = 0x02, 0x04, 0x08, 0x10
MAX_SPEED = 0x3F


def frame(address: int, cmd1: int, cmd2: int, data1: int, data2: int) -> bytes:
    body = bytes([address & 0xFF, cmd1 & 0xFF, cmd2 & 0xFF, data1 & 0xFF, data2 & 0xFF])
    return b"\xFF" + body + bytes([sum(body) & 0xFF])


def speed_command(address: int, yaw_rate_dps: float, pitch_rate_dps: float, max_rate_dps: float) -> bytes:
    """Rates scaled to Pelco speed steps (max_rate_dps -> 0x3F)."""
    def step(rate):
        return min(MAX_SPEED, round(abs(rate) / max_rate_dps * MAX_SPEED)) if max_rate_dps > 0 else 0

    pan, tilt = step(yaw_rate_dps), step(pitch_rate_dps)
    cmd2 = 0
    if pan:
        cmd2 |= RIGHT if yaw_rate_dps > 0 else LEFT
    if tilt:
        cmd2 |= UP if pitch_rate_dps > 0 else DOWN
    return frame(address, 0, cmd2, pan, tilt)


def stop(address: int) -> bytes:
    return frame(address, 0, 0, 0, 0)
