"""SimpleBGC (BaseCam) serial API v2 frames: CMD_CONTROL in speed mode.

Frame: ``'$'`` · cmd · size · (cmd + size) mod 256 · payload · CRC16 (LSB first) over
cmd..payload (``crc16_sbgc``). CMD_CONTROL (67) payload, 15 bytes: modes (roll, pitch, yaw), then
per axis int16 speed and int16 angle, little-endian. Speed unit 0.1220740379 deg/s. The board's
control timeout (CMD_CONTROL_CONFIG's TIMEOUT_MS) makes it stop by itself when frames stop coming:
the dead-man switch.
"""

from __future__ import annotations

import struct

from edge.gimbal.protocols.crc import crc16_sbgc

START_V2 = 0x24
CMD_CONTROL = 67
CMD_CONTROL_CONFIG = 90
MODE_NO_CONTROL, MODE_SPEED, MODE_ANGLE = 0, 1, 2
SPEED_UNIT_DPS = 0.1220740379
ANGLE_UNIT_DEG = 360.0 / 16384


def frame_v2(cmd: int, payload: bytes) -> bytes:
    size = len(payload)
    header = bytes([cmd, size, (cmd + size) & 0xFF])
    return bytes([START_V2]) + header + payload + struct.pack("<H", crc16_sbgc(header + payload))


def _speed(dps: float) -> int:
    return max(-32768, min(32767, round(dps / SPEED_UNIT_DPS)))


def control_speed(yaw_dps: float, pitch_dps: float, roll_dps: float = 0.0) -> bytes:
    """CMD_CONTROL, speed mode on all three axes (0 deg/s = hold)."""
    payload = struct.pack("<BBB", MODE_SPEED, MODE_SPEED, MODE_SPEED)
    for dps in (roll_dps, pitch_dps, yaw_dps):
        payload += struct.pack("<hh", _speed(dps), 0)
    return frame_v2(CMD_CONTROL, payload)


def control_angle(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> bytes:
    payload = struct.pack("<BBB", MODE_ANGLE, MODE_ANGLE, MODE_ANGLE)
    for deg in (roll_deg, pitch_deg, yaw_deg):
        payload += struct.pack("<hh", 0, max(-32768, min(32767, round(deg / ANGLE_UNIT_DEG))))
    return frame_v2(CMD_CONTROL, payload)


def control_config(timeout_ms: int) -> bytes:
    """CMD_CONTROL_CONFIG with the control timeout: if no CMD_CONTROL comes for ``timeout_ms`` (0: never)
    the board leaves serial control by itself. Payload, 41 bytes: TIMEOUT_MS uint16, then five channel
    priorities, per axis ANGLE_LPF, SPEED_LPF, RC_LPF, ACC_LIMIT uint16, JERK_SLOPE and a reserved byte,
    RC_EXPO_RATE, FLAGS uint16, EULER_ORDER and 9 reserved bytes. Everything but the timeout is left 0,
    as BaseCam's serial API library sends it when only the timeout is wanted."""
    return frame_v2(CMD_CONTROL_CONFIG, struct.pack("<H", max(0, min(0xFFFF, int(timeout_ms)))) + bytes(39))


def release() -> bytes:
    """CMD_CONTROL with NO_CONTROL on all axes: hand control back to the board."""
    return frame_v2(CMD_CONTROL, struct.pack("<BBB", 0, 0, 0) + bytes(12))


def parse_v2(frame: bytes) -> tuple[int, bytes]:
    """(cmd, payload) of one complete v2 frame; ValueError on any check failure."""
    if len(frame) < 6 or frame[0] != START_V2:
        raise ValueError("not a SimpleBGC v2 frame")
    cmd, size, check = frame[1], frame[2], frame[3]
    if (cmd + size) & 0xFF != check or len(frame) != 6 + size:
        raise ValueError("bad header")
    payload = frame[4:4 + size]
    (crc,) = struct.unpack_from("<H", frame, 4 + size)
    if crc != crc16_sbgc(frame[1:4] + payload):
        raise ValueError("bad CRC")
    return cmd, payload
