"""Ground-station commands through pymavlink on UDP loopback: only those addressed to this gimbal are
acted on and acknowledged, and the acknowledgement says what the loop will do with them."""

import socket
import time

import pytest

from edge.outputs.mavlink import MavlinkConfig
from support.loop_fakes import FakeTracker, FrameList
from support.seams import free_udp_port

mavutil = pytest.importorskip("pymavlink.mavutil")


@pytest.fixture
def link():
    from edge.outputs.mavlink import DIALECT, MavlinkGimbalOutput

    port = free_udp_port()
    ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255, source_component=190,
                                        dialect=DIALECT)
    out = MavlinkGimbalOutput(MavlinkConfig(port=f"udpout:127.0.0.1:{port}", camera_component_id=100))   # 1 / 191
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
    others = [(42, 100), (1, 101), (42, 191), (42, 0), (0, 101)]  # 101: another camera on our vehicle
    ours = [(1, 191), (0, 0), (0, 191), (1, 0), (1, 100)]         # 0: broadcast; 100: our camera component
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


class RecordingTracker(FakeTracker):
    """Sees the target where it was picked: records what the loop starts it on."""

    def __init__(self):
        self.inits = []

    def init(self, frame, box):
        self.inits.append(tuple(round(v, 1) for v in box))

    def update(self, frame):
        from edge.trackers.state import TrackResult, TrackState

        return TrackResult(self.inits[-1], 0.9, TrackState.TRACKING, 0)


def test_track_point_is_acknowledged_as_the_loop_takes_it(link, caplog):
    import threading

    from edge.config import load_config
    from edge.outputs.mavlink import MAV_CMD_CAMERA_TRACK_POINT
    from edge.runtime.loop import TrackingLoop

    ground, out = link
    points = [(0.5, 0.5, float("nan")), (0.5, 0.5, 1e30), (0.5, 0.5, -0.1), (0.5, 0.5, 1.5), (float("nan"), 0.5, 0.1),
              (0.5, 2.0, 0.1),
              (1.0, 1.0, 1.0)]                    # the corner, the widest radius: a box the loop must take
    for x, y, radius in points:
        ground.mav.command_long_send(1, 191, MAV_CMD_CAMERA_TRACK_POINT, 0, x, y, radius, 0, 0, 0, 0)
    tracker = RecordingTracker()
    loop = TrackingLoop(tracker=tracker, grabber=FrameList(20), outputs=[out], config=load_config({}))
    with caplog.at_level("INFO"):
        deadline = time.monotonic() + 5
        while not tracker.inits and time.monotonic() < deadline:
            loop.step()
        loop.run(threading.Event())
    acks = acks_until(ground, MAV_CMD_CAMERA_TRACK_POINT, len(points))
    assert [a.result for a in acks] == [2] * 6 + [0], acks            # DENIED six times, then ACCEPTED
    assert tracker.inits == [(400.0, 240.0, 240.0, 240.0)]            # the accepted one, cut to the frame
    assert not [r for r in caplog.records if "ignored target" in r.getMessage()]


@pytest.fixture(scope="module")
def fit_target():
    from edge.target import fit_target

    return fit_target


def test_every_normalised_request_that_passes_gives_a_box_the_loop_takes(fit_target):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from edge.outputs.base import RemoteTarget

    unit = st.floats(0.0, 1.0)
    frames = st.sampled_from([(640, 480), (1920, 1080), (320, 240), (480, 640), (64, 48)])

    @settings(max_examples=300, deadline=None)
    @given(x=unit, y=unit, radius=unit, frame=frames)
    def points(x, y, radius, frame):
        fit_target(RemoteTarget("point", point=(x, y), radius=radius).box_in(*frame), *frame)

    @settings(max_examples=300, deadline=None)
    @given(a=unit, b=unit, c=unit, d=unit, frame=frames)
    def rectangles(a, b, c, d, frame):
        if a == b or c == d:
            return
        rect = (min(a, b), min(c, d), max(a, b), max(c, d))
        fit_target(RemoteTarget("rectangle", rect=rect).box_in(*frame), *frame)

    points()
    rectangles()
    # the corners, where the least of a box is inside
    for x in (0.0, 1.0):
        for y in (0.0, 1.0):
            fit_target(RemoteTarget("point", point=(x, y), radius=1.0).box_in(640, 480), 640, 480)
            fit_target(RemoteTarget("rectangle", rect=(x * 0.999, y * 0.999, x * 0.999 + 0.001,
                                                        y * 0.999 + 0.001)).box_in(640, 480), 640, 480)


@pytest.mark.parametrize("kind, fields", [
    ("point", {"point": (0.5, float("nan")), "radius": 0.1}), ("point", {"point": (0.5, 0.5), "radius": 1e30}),
    ("point", {"point": (0.5, 0.5), "radius": float("inf")}), ("point", {"point": (0.5,), "radius": 0.1}),
    ("rectangle", {"rect": (0.5, 0.5, 0.4, 0.6)}), ("rectangle", {"rect": (0.1, 0.1, 1e30, 0.6)}),
    ("rectangle", {"rect": (0.1, float("nan"), 0.2, 0.6)}), ("rectangle", {"rect": None})])
def test_a_normalised_request_out_of_range_is_refused_in_one_line(kind, fields):
    from edge.outputs.base import RemoteTarget

    with pytest.raises(ValueError) as info:
        RemoteTarget(kind, **fields)
    assert "\n" not in str(info.value)


def set_points(conn, wait=0.3):
    """Every GIMBAL_MANAGER_SET_PITCHYAW that arrives on ``conn`` within ``wait`` seconds."""
    got, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        msg = conn.recv_match(type="GIMBAL_MANAGER_SET_PITCHYAW", blocking=True, timeout=0.05)
        if msg is not None:
            got.append(msg)
    return got


def update(yaw):
    from edge.control.command import GimbalCommand
    from edge.outputs.base import ControlUpdate

    return ControlUpdate(seq=0, t_ms=0, state="TRACKING", box=(300, 200, 40, 80), score=0.9, frame_size=(640, 480),
                         command=GimbalCommand(yaw, 0.0, True))


def test_set_points_go_to_our_own_autopilot_never_to_another_vehicle_heard_on_the_link(link):
    ground, out = link
    ground.mav.srcSystem, ground.mav.srcComponent = 42, 1       # another vehicle's autopilot
    ground.mav.heartbeat_send(2, 3, 0, 0, 4)                     # quadrotor, ArduPilot, active
    time.sleep(0.1)
    out.poll()
    out.send(update(10.0))
    assert [m.target_system for m in set_points(ground)] == [0]  # still broadcast to the gimbal managers
    ground.mav.srcSystem = 1                                     # our own vehicle's (system_id 1)
    ground.mav.heartbeat_send(2, 3, 0, 0, 4)
    time.sleep(0.1)
    out.poll()
    out.send(update(10.0))
    assert [(m.target_system, m.target_component) for m in set_points(ground)] == [(1, 1)]


def test_a_flood_of_commands_is_read_a_few_per_poll_and_none_is_lost(link):
    from edge.outputs.mavlink import MAV_CMD_CAMERA_TRACK_POINT

    ground, out = link
    for _ in range(50):
        ground.mav.command_long_send(1, 191, MAV_CMD_CAMERA_TRACK_POINT, 0, 0.5, 0.5, 0.1, 0, 0, 0, 0)
    time.sleep(0.2)                                              # loopback: all 50 are queued by now
    first = out.poll()
    assert 0 < len(first) < 50                                   # the loop gets its turn back
    assert len(first) + len(poll_until(out, 50 - len(first))) == 50


def test_udpin_stop_sent_before_a_peer_was_heard_reaches_it_with_the_next_heartbeat():
    import math

    from edge.outputs.mavlink import DIALECT, MavlinkGimbalOutput

    port, clock = free_udp_port(), [0.0]
    out = MavlinkGimbalOutput(MavlinkConfig(port=f"udpin:127.0.0.1:{port}"), clock=lambda: clock[0])
    out.stop()                                  # nobody heard yet: pymavlink drops it, without an error
    peer = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=1, source_component=1,
                                      dialect=DIALECT)
    peer.mav.heartbeat_send(2, 3, 0, 0, 4)
    time.sleep(0.1)
    out.poll()
    out.heartbeat(0, "IDLE")
    sets = set_points(peer)
    assert [(m.yaw_rate, m.pitch_rate) for m in sets] == [(0.0, 0.0)] and math.isnan(sets[0].yaw), sets
    clock[0] += 1.0
    out.heartbeat(0, "IDLE")                    # and again with every HEARTBEAT: a datagram may be lost
    assert len(set_points(peer)) == 1
    out.send(update(20.0))
    assert len(set_points(peer)) == 1
    clock[0] += 1.0
    out.heartbeat(0, "TRACKING")                # a frame gap: a rate is never sent again without a frame
    assert set_points(peer) == []
    out.close()
    peer.close()


def test_tcp_peer_that_resets_is_a_lost_link_and_the_gimbal_gets_a_stop_when_it_is_back():
    import struct

    from edge.outputs.mavlink import MavlinkGimbalOutput

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(2)
    server.settimeout(5)
    port, clock = server.getsockname()[1], [0.0]
    out = MavlinkGimbalOutput(MavlinkConfig(port=f"tcp:127.0.0.1:{port}"), clock=lambda: clock[0])
    peer, _ = server.accept()
    out.send(update(20.0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()                                # reset by the peer
    for i in range(50):
        if not out.connected:
            break
        out.send(update(20.0 + i))
        time.sleep(0.02)
    assert not out.connected and out.write_errors >= 1
    clock[0] += 30.0                            # past the backoff
    out.heartbeat(0, "TRACKING")                # a frame gap: the rate that was lost is not resent, a stop is
    peer, _ = server.accept()
    parser = mavutil.mavlink.MAVLink(None)
    parser.robust_parsing = True
    peer.settimeout(0.5)
    data = b""
    try:
        while True:
            chunk = peer.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    sets = [m for m in parser.parse_buffer(data) or [] if m.get_type() == "GIMBAL_MANAGER_SET_PITCHYAW"]
    assert [(m.yaw_rate, m.pitch_rate) for m in sets] == [(0.0, 0.0)], sets
    out.close()
    peer.close()
    server.close()
