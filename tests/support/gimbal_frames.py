"""What a head was sent: control updates to send, and the frames of each protocol read back."""

from edge.control.command import GimbalCommand
from edge.gimbal.protocols import simplebgc
from edge.outputs.base import ControlUpdate


def mavlink_parse(data: bytes):
    """The MAVLink v2 messages in ``data`` (bad bytes skipped)."""
    from pymavlink.dialects.v20 import common

    parser = common.MAVLink(None)
    parser.robust_parsing = True
    return [m for m in parser.parse_buffer(data) or [] if m.get_type() != "BAD_DATA"]


def sbgc_frames(data: bytes):
    """(modes, (roll, pitch, yaw) speeds in deg/s, (roll, pitch, yaw) angles in deg) per CMD_CONTROL frame
    (the CMD_CONTROL_CONFIG written on each port opened is left out: test_simplebgc_control_config)."""
    import struct

    from edge.gimbal.protocols import simplebgc

    out = []
    while data:
        size = 6 + data[2]
        cmd, payload = simplebgc.parse_v2(data[:size])
        data = data[size:]
        if cmd == simplebgc.CMD_CONTROL_CONFIG:
            continue
        assert cmd == simplebgc.CMD_CONTROL
        v = struct.unpack("<BBBhhhhhh", payload)
        out.append((v[:3], tuple(round(s * simplebgc.SPEED_UNIT_DPS, 1) for s in v[3::2]),
                    tuple(round(a * simplebgc.ANGLE_UNIT_DEG, 1) for a in v[4::2])))
    return out


def frames7(data: bytes) -> list[bytes]:
    return [data[i:i + 7] for i in range(0, len(data), 7)]


def sbgc_split(data: bytes):
    """(command, payload) of each SimpleBGC v2 frame in ``data``."""
    out = []
    while data:
        size = 6 + data[2]
        out.append(simplebgc.parse_v2(data[:size]))
        data = data[size:]
    return out


def update(seq=0, state="TRACKING", yaw=10.0, pitch=-5.0, active=True, box=(300, 200, 40, 80)):
    return ControlUpdate(seq=seq, t_ms=1000 + seq * 33, state=state, box=box, score=0.9, frame_size=(640, 480),
                         command=GimbalCommand(yaw, pitch, active))
