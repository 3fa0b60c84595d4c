"""The MAVLink camera protocol v2's tracking part, with pymavlink as the ground station on UDP
loopback: the camera component announces itself and its tracking flags, a rectangle starts a
track, CAMERA_TRACKING_IMAGE_STATUS comes at the asked rate while the loop tracks (the loop's and
the output's clock are injected: rates are counted in clock time, not wall time), IDLE after a
stop; commands for other systems or components get nothing; a dry run moves nothing."""

import math
import time

import numpy as np
import pytest

from edge.config import load_config
from edge.outputs.mavlink import MavlinkConfig

mavutil = pytest.importorskip("pymavlink.mavutil")

from support.clock import FakeClock  # noqa: E402
from support.loop_fakes import FakeTracker  # noqa: E402
from support.seams import free_udp_port  # noqa: E402

CAMERA = 100
MSG_CAMERA_INFORMATION = 259
MSG_STATUS = 275
MSG_GIMBAL_MANAGER_INFORMATION = 280


@pytest.fixture
def link():
    from edge.outputs.mavlink import DIALECT, MavlinkGimbalOutput

    port, clock = free_udp_port(), FakeClock(start=1000.0)
    ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255, source_component=190,
                                        dialect=DIALECT)
    out = MavlinkGimbalOutput(MavlinkConfig(port=f"udpout:127.0.0.1:{port}", camera_component_id=CAMERA), clock=clock)
    out.heartbeat(0, "IDLE")                     # the ground station learns where we are (udpin answers the
    assert ground.recv_match(type="HEARTBEAT", blocking=True, timeout=3) is not None   # last peer it read)
    yield ground, out, clock
    out.close()
    ground.close()


def drain(ground, wait=0.3):
    """Every message that arrives within ``wait`` s of the last one."""
    got = []
    while True:
        msg = ground.recv_match(blocking=True, timeout=wait)
        if msg is None:
            return got
        if msg.get_type() != "BAD_DATA":
            got.append(msg)


def of(msgs, kind, component=None):
    return [m for m in msgs if m.get_type() == kind and (component is None or m.get_srcComponent() == component)]


def command(ground, target, cmd, *params):
    params = list(params) + [0.0] * (7 - len(params))
    ground.mav.command_long_send(target[0], target[1], cmd, 0, *params)


def poll_for(out, wait=0.3):
    """What the output's poll() returns over ``wait`` s of wall time (datagrams in flight)."""
    got, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        got += out.poll()
        time.sleep(0.01)
    return got


def test_the_camera_component_announces_itself_and_its_tracking_flags(link):
    from pymavlink.dialects.v20 import common as m

    ground, out, clock = link
    beats = of(drain(ground), "HEARTBEAT", CAMERA)
    assert [(b.type, b.get_srcSystem()) for b in beats] == [(m.MAV_TYPE_CAMERA, 1)]
    command(ground, (1, CAMERA), m.MAV_CMD_REQUEST_MESSAGE, MSG_CAMERA_INFORMATION)
    command(ground, (1, CAMERA), m.MAV_CMD_REQUEST_CAMERA_INFORMATION, 1)     # the older request
    poll_for(out)
    got = drain(ground)
    acks = of(got, "COMMAND_ACK", CAMERA)
    assert [(a.command, a.result, a.target_system, a.target_component) for a in acks] == [
        (m.MAV_CMD_REQUEST_MESSAGE, m.MAV_RESULT_ACCEPTED, 255, 190),
        (m.MAV_CMD_REQUEST_CAMERA_INFORMATION, m.MAV_RESULT_ACCEPTED, 255, 190)]
    infos = of(got, "CAMERA_INFORMATION", CAMERA)
    assert len(infos) == 2
    flags = m.CAMERA_CAP_FLAGS_HAS_TRACKING_RECTANGLE | m.CAMERA_CAP_FLAGS_HAS_TRACKING_POINT
    assert all(i.flags & flags == flags for i in infos)
    assert bytes(infos[0].vendor_name).rstrip(b"\0") == b"edge-track"
    # one HEARTBEAT a second, from each component
    clock.t += 1.0
    out.heartbeat(0, "IDLE")
    beats = of(drain(ground), "HEARTBEAT")
    assert sorted((b.get_srcComponent(), b.type) for b in beats) == [(CAMERA, m.MAV_TYPE_CAMERA),
                                                                     (191, m.MAV_TYPE_ONBOARD_CONTROLLER)]


def test_requests_for_other_systems_components_or_messages_get_no_answer_from_it(link):
    from pymavlink.dialects.v20 import common as m

    ground, out, _ = link
    drain(ground)
    for target in [(42, CAMERA), (1, 101), (42, 0), (0, 101)]:     # another vehicle, another camera
        command(ground, target, m.MAV_CMD_REQUEST_MESSAGE, MSG_CAMERA_INFORMATION)
        command(ground, target, m.MAV_CMD_SET_MESSAGE_INTERVAL, MSG_STATUS, 1e5)
    # a broadcast request for a message a camera does not send is the autopilot's to answer
    command(ground, (1, 0), m.MAV_CMD_REQUEST_MESSAGE, MSG_GIMBAL_MANAGER_INFORMATION)
    assert poll_for(out) == []
    got = drain(ground)
    assert of(got, "COMMAND_ACK") == [] and of(got, "CAMERA_INFORMATION") == [], got
    # asked of the camera itself: UNSUPPORTED, said once
    command(ground, (1, CAMERA), m.MAV_CMD_REQUEST_MESSAGE, MSG_GIMBAL_MANAGER_INFORMATION)
    poll_for(out)
    acks = of(drain(ground), "COMMAND_ACK")
    assert [(a.command, a.result, a.get_srcComponent()) for a in acks] == [
        (m.MAV_CMD_REQUEST_MESSAGE, m.MAV_RESULT_UNSUPPORTED, CAMERA)]


class BoxTracker(FakeTracker):
    """Sees the target where it was picked, or loses it from frame ``lose_after`` on."""

    def __init__(self, lose_after=None):
        self.inits, self.updates, self.lose_after = [], 0, lose_after

    def init(self, frame, box):
        self.inits.append(tuple(box))
        self.updates = 0

    def update(self, frame):
        from edge.trackers.state import TrackResult, TrackState

        self.updates += 1
        lost = self.lose_after is not None and self.updates > self.lose_after
        return TrackResult(self.inits[-1], 0.1 if lost else 0.9, TrackState.LOST if lost else TrackState.TRACKING,
                           self.updates)


class Frames:
    """640 x 480 frames at ``fps`` of the injected clock: each get() moves it one frame on."""

    def __init__(self, clock, fps=30.0):
        self.clock, self.fps, self.finished, self.dropped = clock, fps, False, 0
        self.image = np.zeros((480, 640, 3), np.uint8)
        self.index = 0

    def get(self, timeout):
        from edge.camera.base import Frame

        self.clock.t += 1.0 / self.fps
        self.index += 1
        return Frame(self.image, time.monotonic_ns(), self.index)

    def stop(self):
        pass


def step_until(loop, state, guard_s=5.0):
    """Step the loop until it is in ``state`` (the time limit is a hang guard: callers assert on what follows)."""
    deadline = time.monotonic() + guard_s
    while loop.state != state and time.monotonic() < deadline:
        loop.step()
        time.sleep(0.01)


def step_and_collect(loop, ground, steps):
    """Step the loop ``steps`` times (a frame of the injected clock each), reading what the ground
    station gets as it goes (so no socket buffer fills)."""
    got = []
    for _ in range(steps):
        loop.step()
        while True:
            msg = ground.recv_match(blocking=False)
            if msg is None:
                break
            got.append(msg)
    time.sleep(0.05)
    return got + drain(ground, wait=0.2)


def start_track(loop, ground, out, rect=(0.25, 0.25, 0.5, 0.75)):
    from pymavlink.dialects.v20 import common as m

    command(ground, (1, CAMERA), m.MAV_CMD_CAMERA_TRACK_RECTANGLE, *rect)
    step_until(loop, "TRACKING")
    assert loop.state == "TRACKING"


@pytest.mark.parametrize("interval_us, rate_hz", [(None, 5.0), (1e5, 10.0), (5e5, 2.0), (0, 5.0)])
def test_a_rectangle_track_streams_its_status_at_the_asked_rate_then_idle_after_stop(link, interval_us, rate_hz):
    from pymavlink.dialects.v20 import common as m

    from edge.runtime.loop import TrackingLoop

    ground, out, clock = link
    tracker = BoxTracker()
    loop = TrackingLoop(tracker=tracker, grabber=Frames(clock), outputs=[out], config=load_config({}), clock=clock)
    if interval_us is not None:
        command(ground, (1, CAMERA), m.MAV_CMD_SET_MESSAGE_INTERVAL, MSG_STATUS, interval_us)
        poll_for(out)
    drain(ground)
    start_track(loop, ground, out)
    assert tracker.inits == [(160.0, 120.0, 160.0, 240.0)]
    got = step_and_collect(loop, ground, 90)                     # 3 s at 30 fps
    statuses = of(got, "CAMERA_TRACKING_IMAGE_STATUS", CAMERA)
    assert abs(len(statuses) - 3 * rate_hz) <= 1, len(statuses)
    s = statuses[-1]
    assert (s.tracking_status, s.tracking_mode, s.target_data) == (m.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE,
                                                                   m.CAMERA_TRACKING_MODE_RECTANGLE,
                                                                   m.CAMERA_TRACKING_TARGET_DATA_IN_STATUS)
    assert (s.rec_top_x, s.rec_top_y, s.rec_bottom_x, s.rec_bottom_y) == pytest.approx((0.25, 0.25, 0.5, 0.75))
    assert math.isnan(s.point_x)

    command(ground, (1, CAMERA), m.MAV_CMD_CAMERA_STOP_TRACKING)
    step_until(loop, "IDLE")
    got = step_and_collect(loop, ground, 60)
    statuses = of(got, "CAMERA_TRACKING_IMAGE_STATUS", CAMERA)
    assert [(s.tracking_status, s.tracking_mode) for s in statuses][-1:] == [
        (m.CAMERA_TRACKING_STATUS_FLAGS_IDLE, m.CAMERA_TRACKING_MODE_NONE)]
    assert sum(s.tracking_status == m.CAMERA_TRACKING_STATUS_FLAGS_IDLE for s in statuses) == 1   # once, not a stream
    loop.shutdown()


def test_a_point_track_reports_its_point_and_a_lost_target_reports_error(link):
    from pymavlink.dialects.v20 import common as m

    from edge.runtime.loop import TrackingLoop

    ground, out, clock = link
    loop = TrackingLoop(tracker=BoxTracker(lose_after=30), grabber=Frames(clock), outputs=[out],
                        config=load_config({}), clock=clock)
    drain(ground)
    command(ground, (1, CAMERA), m.MAV_CMD_CAMERA_TRACK_POINT, 0.5, 0.5, 0.1)
    step_until(loop, "TRACKING")
    got = step_and_collect(loop, ground, 60)
    statuses = of(got, "CAMERA_TRACKING_IMAGE_STATUS", CAMERA)
    active = [s for s in statuses if s.tracking_status == m.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE]
    errors = [s for s in statuses if s.tracking_status == m.CAMERA_TRACKING_STATUS_FLAGS_ERROR]
    assert active and errors and statuses.index(errors[0]) == len(active)     # tracked, then lost
    s = active[-1]
    assert s.tracking_mode == m.CAMERA_TRACKING_MODE_POINT
    # the point's box (side 2 * radius * width, at least 64 px) about the centre
    assert (s.point_x, s.point_y) == pytest.approx((0.5, 0.5))
    assert s.radius == pytest.approx(0.1)
    assert math.isnan(s.rec_top_x)
    assert all(math.isnan(e.point_x) and e.target_data == 0 for e in errors)   # 0: no target data


def test_the_stream_stops_at_interval_minus_one_and_a_status_can_be_asked_for(link):
    from pymavlink.dialects.v20 import common as m

    from edge.runtime.loop import TrackingLoop

    ground, out, clock = link
    loop = TrackingLoop(tracker=BoxTracker(), grabber=Frames(clock), outputs=[out], config=load_config({}),
                        clock=clock)
    drain(ground)
    command(ground, (1, CAMERA), m.MAV_CMD_SET_MESSAGE_INTERVAL, MSG_STATUS, -1)
    command(ground, (1, CAMERA), m.MAV_CMD_SET_MESSAGE_INTERVAL, MSG_STATUS, -5)     # not an interval
    poll_for(out)
    acks = of(drain(ground), "COMMAND_ACK", CAMERA)
    assert [a.result for a in acks] == [m.MAV_RESULT_ACCEPTED, m.MAV_RESULT_DENIED]
    start_track(loop, ground, out)
    assert of(step_and_collect(loop, ground, 60), "CAMERA_TRACKING_IMAGE_STATUS") == []
    command(ground, (1, CAMERA), m.MAV_CMD_REQUEST_MESSAGE, MSG_STATUS)
    got = step_and_collect(loop, ground, 10)
    statuses = of(got, "CAMERA_TRACKING_IMAGE_STATUS", CAMERA)
    assert [s.tracking_status for s in statuses] == [m.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE]


def test_a_dry_run_tracks_but_moves_nothing_and_reports_idle(link):
    from pymavlink.dialects.v20 import common as m

    from edge.runtime.loop import TrackingLoop

    ground, out, clock = link
    loop = TrackingLoop(tracker=BoxTracker(), grabber=Frames(clock), outputs=[out], config=load_config({}),
                        clock=clock)
    loop.set_dry_run(True)
    drain(ground)
    start_track(loop, ground, out, rect=(0.6, 0.6, 0.9, 0.9))    # off centre: a live run would move
    got = step_and_collect(loop, ground, 60)
    sets = of(got, "GIMBAL_MANAGER_SET_PITCHYAW")
    assert all(s.yaw_rate == 0.0 and s.pitch_rate == 0.0 for s in sets), sets
    statuses = of(got, "CAMERA_TRACKING_IMAGE_STATUS")
    assert all(s.tracking_status == m.CAMERA_TRACKING_STATUS_FLAGS_IDLE for s in statuses), statuses
    acks = of(got, "COMMAND_ACK")
    assert all(a.result == m.MAV_RESULT_ACCEPTED for a in acks)
    # and live, the same track moves the head: the check above could fail
    loop.set_dry_run(False)
    got = step_and_collect(loop, ground, 30)
    assert any(s.yaw_rate != 0.0 for s in of(got, "GIMBAL_MANAGER_SET_PITCHYAW"))
    assert any(s.tracking_status == m.CAMERA_TRACKING_STATUS_FLAGS_ACTIVE
               for s in of(got, "CAMERA_TRACKING_IMAGE_STATUS"))


def test_closing_tells_the_ground_station_tracking_is_over(link):
    from pymavlink.dialects.v20 import common as m

    from edge.runtime.loop import TrackingLoop

    ground, out, clock = link
    loop = TrackingLoop(tracker=BoxTracker(), grabber=Frames(clock), outputs=[out], config=load_config({}),
                        clock=clock)
    drain(ground)
    start_track(loop, ground, out)
    step_and_collect(loop, ground, 10)
    loop.shutdown()
    statuses = of(drain(ground), "CAMERA_TRACKING_IMAGE_STATUS", CAMERA)
    assert [s.tracking_status for s in statuses][-1:] == [m.CAMERA_TRACKING_STATUS_FLAGS_IDLE]


def test_a_flood_of_bad_commands_logs_a_few_lines_a_second_with_the_count(link, caplog):
    from pymavlink.dialects.v20 import common as m

    ground, out, clock = link
    with caplog.at_level("INFO", logger="edge.outputs.mavlink"):
        for _ in range(240):
            command(ground, (1, CAMERA), m.MAV_CMD_CAMERA_TRACK_POINT, float("nan"), 0.5, 0.1)
        time.sleep(0.2)
        got = []
        for _ in range(100):
            got += out.poll()
        assert got == []
        denied = [r.getMessage() for r in caplog.records if "denied" in r.getMessage()]
        assert len(denied) == 3, denied                                   # the clock stood still: one second
        clock.t += 1.0
        command(ground, (1, CAMERA), m.MAV_CMD_CAMERA_TRACK_POINT, float("nan"), 0.5, 0.1)
        poll_for(out)
        denied = [r.getMessage() for r in caplog.records if "denied" in r.getMessage()]
        assert len(denied) == 4 and "(237 more like it in the last 1 s)" in denied[-1], denied[-1]
    acks = of(drain(ground), "COMMAND_ACK")
    assert len(acks) == 241 and all(a.result == m.MAV_RESULT_DENIED for a in acks)   # every one answered


def test_the_camera_component_is_opt_in_and_only_at_a_free_camera_id():
    """Off unless asked for: an id a real camera on the vehicle has would make this output answer,
    and act on, what a ground station sends that camera. config check refuses what run would."""
    from edge.config import load_config
    from edge.errors import ConfigError

    port = "udpout:127.0.0.1:14550"
    assert load_config({"outputs": [{"type": "mavlink", "port": port}]}).outputs[0].camera_component_id == 0
    assert load_config({"outputs": [{"type": "mavlink", "port": port, "camera_component_id": 101}]})
    for bad in (1, 99, 106, 191):   # the autopilot, not a camera id, not a camera id, our own component
        with pytest.raises(ConfigError, match="camera_component_id"):
            load_config({"outputs": [{"type": "mavlink", "port": port, "camera_component_id": bad}]})
