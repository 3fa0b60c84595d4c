"""Ground-station commands through pymavlink on UDP loopback: only those addressed to this gimbal are
acted on and acknowledged, and the acknowledgement says what the loop will do with them."""

import socket
import time

import pytest

from edge.config import OutputConfig

mavutil = pytest.importorskip("pymavlink.mavutil")


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def link():
    from edge.outputs.mavlink import DIALECT, MavlinkGimbalOutput

    port = free_udp_port()
    ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255, source_component=190,
                                        dialect=DIALECT)
    out = MavlinkGimbalOutput(OutputConfig(type="mavlink", port=f"udpout:127.0.0.1:{port}"))   # 1 / 191
    out.heartbeat(0, "IDLE")                     # the ground station learns where we are
    assert ground.recv_match(type="HEARTBEAT", blocking=True, timeout=3) is not None
    yield ground, out
    out.close()
    ground.close()


def poll_until(out, count, timeout=5.0):
    got, deadline = [], time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += out.poll()
        time.sleep(0.01)
    return got


def acks_until(ground, command, count, timeout=5.0):
    """Every COMMAND_ACK up to the count-th one for ``command``."""
    acks, deadline = [], time.monotonic() + timeout
    while sum(a.command == command for a in acks) < count and time.monotonic() < deadline:
        ack = ground.recv_match(type="COMMAND_ACK", blocking=True, timeout=0.2)
        if ack is not None:
            acks.append(ack)
    return acks


def test_commands_for_another_system_or_component_are_ignored_and_not_acknowledged(link):
    from edge.outputs.mavlink import (
        MAV_CMD_CAMERA_STOP_TRACKING,
        MAV_CMD_CAMERA_TRACK_POINT,
        MAV_CMD_CAMERA_TRACK_RECTANGLE,
    )

    ground, out = link
    others = [(42, 100), (1, 100), (42, 191), (42, 0), (0, 100)]
    ours = [(1, 191), (0, 0), (0, 191), (1, 0)]                   # 0: broadcast
    # Sent first, in order, over one socket: anything done with them would come before the replies below.
    for system, component in others:
        ground.mav.command_long_send(system, component, MAV_CMD_CAMERA_TRACK_POINT, 0, 0.5, 0.5, 0.1, 0, 0, 0, 0)
        ground.mav.command_long_send(system, component, MAV_CMD_CAMERA_STOP_TRACKING, 0, 0, 0, 0, 0, 0, 0, 0)
    for i, (system, component) in enumerate(ours):
        x = 0.1 * (i + 1)
        ground.mav.command_long_send(system, component, MAV_CMD_CAMERA_TRACK_RECTANGLE, 0, x, 0.2, x + 0.3, 0.6,
                                     0, 0, 0)
    requests = poll_until(out, len(ours))
    assert [(r.kind, r.rect[0] if r.rect else None) for r in requests] == [("rectangle", pytest.approx(0.1 * (i + 1)))
                                                      for i in range(len(ours))]
    acks = acks_until(ground, MAV_CMD_CAMERA_TRACK_RECTANGLE, len(ours))
    assert [(a.command, a.result) for a in acks] == [(MAV_CMD_CAMERA_TRACK_RECTANGLE, 0)] * len(ours), acks
