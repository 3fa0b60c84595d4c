"""Every reconnect leaves each head with its current command, a stop included, and a failed write never
counts as delivered: pty pairs for the serial heads, pymavlink on a pty for MAVLink, the SMBus seam for
the PCA9685."""

import pytest

from edge.config import ControlConfig
from edge.gimbal.protocols import pelco_d
from edge.outputs.box_stream import BoxStreamConfig
from edge.outputs.mavlink import MavlinkConfig
from edge.outputs.pca9685 import Pca9685Config
from edge.outputs.pelco import PelcoDConfig
from edge.outputs.pwm import PwmConfig
from edge.outputs.simplebgc import SimpleBGCConfig
from support.gimbal_frames import frames7, mavlink_parse, sbgc_frames, update
from support.seams import FlakySMBus, Pty

pytest.importorskip("serial", reason="needs pyserial (pip install 'edge-track[gimbal]')")


def serial_link(pty, clock):
    from edge.outputs.transport import SerialLink

    return SerialLink(pty.link, 115200, backoff_initial_s=0.1, clock=lambda: clock[0])


def sent_then_unplugged(tmp_path, make, first):
    """An output made by ``make(pty, clock)`` on a pty pair, sent ``first``, then unplugged (the pty
    closed): (output, its clock as [seconds], the bytes it had written)."""
    pty, clock = Pty(tmp_path), [0.0]
    out = make(pty, clock)
    out.send(first)
    data = pty.read()
    pty.close()
    return out, clock, data


def pelco(pty, clock):
    from edge.outputs.pelco import PelcoDOutput

    return PelcoDOutput(PelcoDConfig(port=pty.link, address=1), link=serial_link(pty, clock))


def simplebgc(pty, clock):
    from edge.outputs.simplebgc import SimpleBGCOutput

    return SimpleBGCOutput(SimpleBGCConfig(port=pty.link), ControlConfig(), link=serial_link(pty, clock))


def mavlink(pty, clock):
    pytest.importorskip("pymavlink.mavutil")
    from edge.outputs.mavlink import MavlinkGimbalOutput

    return MavlinkGimbalOutput(MavlinkConfig(port=pty.link, baud=115200), clock=lambda: clock[0])


def test_pelco_stop_asked_for_while_unplugged_reaches_the_head_when_it_is_back(tmp_path):
    out, clock, sent = sent_then_unplugged(tmp_path, pelco, update(yaw=30.0, pitch=0.0))   # unplugged while moving
    assert frames7(sent) == [pelco_d.speed_command(1, 30.0, 0.0, 60.0)]   # the head was moving
    out.stop()                                    # Stop: the write fails
    for _ in range(3):
        clock[0] += 0.05
        out.heartbeat(0, "IDLE")
    pty2 = Pty(tmp_path)                          # plugged back in under the same name
    for _ in range(5):
        clock[0] += 1.0
        out.heartbeat(0, "IDLE")                  # no frame is being processed: only heartbeats
    got = frames7(pty2.read())
    assert got == [pelco_d.stop(1)], got          # the stop, once: it is latched now
    out.close()
    pty2.close()


def test_pelco_moving_command_that_failed_is_written_after_the_reconnect_and_not_before(tmp_path):
    out, clock, _ = sent_then_unplugged(tmp_path, pelco, update(yaw=30.0, pitch=0.0))
    out.send(update(yaw=-20.0, pitch=10.0))       # a new speed, lost with the port
    pty2 = Pty(tmp_path)
    clock[0] += 1.0
    out.send(update(yaw=-20.0, pitch=10.0))       # unchanged, but the head never got it
    out.send(update(yaw=-20.0, pitch=10.0))       # now it has: latched, not resent
    assert frames7(pty2.read()) == [pelco_d.speed_command(1, -20.0, 10.0, 60.0)]
    out.close()
    assert frames7(pty2.read()) == [pelco_d.stop(1)]
    pty2.close()


def test_box_stream_heartbeat_that_failed_does_not_count_as_sent(tmp_path):
    from edge.gimbal.protocols import boxproto
    from edge.outputs.box_stream import BoxStreamOutput

    def box_stream(pty, clock):
        return BoxStreamOutput(BoxStreamConfig(port=pty.link, heartbeat_hz=5), link=serial_link(pty, clock))

    out, clock, _ = sent_then_unplugged(tmp_path, box_stream, update(0))   # t_ms 1000, TRACKING
    out.stop()                                    # IDLE: lost with the port
    out.heartbeat(1300, "IDLE")                   # due (200 ms period), lost too
    pty2 = Pty(tmp_path)
    clock[0] += 1.0
    out.heartbeat(1400, "IDLE")                   # nothing reached the receiver since 1000: due now
    msgs = boxproto.BoxParser().feed(pty2.read())
    assert [(m.type, m.state) for m in msgs] == [(boxproto.TYPE_HEARTBEAT, "IDLE")], msgs
    out.close()
    pty2.close()


def test_simplebgc_recentre_asked_for_while_unplugged_is_what_the_head_gets_back(tmp_path):
    from edge.gimbal.protocols.simplebgc import MODE_ANGLE

    out, clock, _ = sent_then_unplugged(tmp_path, simplebgc, update(yaw=20.0, pitch=0.0))
    out.stop()
    out.recenter()                                # Re-centre: lost with the port
    pty2 = Pty(tmp_path)
    for _ in range(3):
        clock[0] += 1.0
        out.heartbeat(0, "IDLE")                  # idle: the hold streams the standing command
    got = sbgc_frames(pty2.read())
    # The re-centre, not a zero speed that would cancel it: streamed, for the board's control timeout.
    assert got == [((MODE_ANGLE,) * 3, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))] * 3, got
    out.send(update(yaw=5.0, pitch=0.0))          # tracking again: speed mode, and a hold is a zero speed
    out.heartbeat(0, "IDLE")
    assert [f[1] for f in sbgc_frames(pty2.read())] == [(0.0, 0.0, 5.0), (0.0, 0.0, 0.0)]
    out.close()
    pty2.close()


def test_simplebgc_angle_mode_resumes_from_the_last_delivered_set_point(tmp_path):
    from edge.outputs.simplebgc import SimpleBGCOutput

    pty, clock = Pty(tmp_path), [0.0]
    out = SimpleBGCOutput(SimpleBGCConfig(port=pty.link), ControlConfig(mode="angle"),
                          link=serial_link(pty, clock), clock=lambda: clock[0])
    for _ in range(11):                           # 1 s at 30 deg/s
        out.send(update(yaw=30.0, pitch=0.0))
        clock[0] += 0.1
    assert sbgc_frames(pty.read())[-1][2][2] == 30.0
    pty.close()
    for _ in range(40):                           # 4 s more of commands the head never gets
        out.send(update(yaw=30.0, pitch=0.0))
        clock[0] += 0.1
    pty2 = Pty(tmp_path)
    clock[0] += 10.0                              # past the reopen backoff
    out.heartbeat(0, "LOST")
    out.send(update(yaw=30.0, pitch=0.0))
    clock[0] += 0.1
    out.send(update(yaw=30.0, pitch=0.0))
    yaws = [f[2][2] for f in sbgc_frames(pty2.read())]
    # Where the head was, then one step on: no jump to the 150 degrees the lost commands would have reached.
    assert yaws == [30.0, 30.0, 33.0], yaws
    out.close()
    pty2.close()


def mavlink_turning_then_unplugged(tmp_path):
    """(output, clock, the rates it had sent) for a MAVLink gimbal sent 20 deg/s, then unplugged."""
    out, clock, data = sent_then_unplugged(tmp_path, mavlink, update(yaw=20.0, pitch=0.0))
    return out, clock, [m.yaw_rate for m in mavlink_parse(data) if m.get_type() == "GIMBAL_MANAGER_SET_PITCHYAW"]


def set_points(pty):
    return [m for m in mavlink_parse(pty.read(0.3)) if m.get_type() == "GIMBAL_MANAGER_SET_PITCHYAW"]


@pytest.mark.parametrize("lost", ["stop", "recenter"])
def test_mavlink_stop_or_recentre_lost_with_the_link_reaches_the_gimbal_when_it_is_back(tmp_path, lost):
    import math

    out, clock, rates = mavlink_turning_then_unplugged(tmp_path)   # unplugged while it turns at 20 deg/s
    assert rates == [pytest.approx(math.radians(20.0))]
    getattr(out, lost)()                          # the write fails
    for _ in range(3):
        clock[0] += 0.05
        out.heartbeat(0, "IDLE")
    pty2 = Pty(tmp_path)
    for _ in range(3):
        clock[0] += 30.0                          # past the reopen backoff
        out.heartbeat(0, "IDLE")                  # idle: only heartbeats from the loop
    sets = set_points(pty2)
    assert len(sets) == 1, sets                   # once: the gimbal manager keeps it
    got = sets[0]
    if lost == "stop":
        assert (got.yaw_rate, got.pitch_rate) == (0.0, 0.0) and math.isnan(got.yaw) and math.isnan(got.pitch)
    else:
        assert (got.yaw, got.pitch) == (0.0, 0.0) and math.isnan(got.yaw_rate) and math.isnan(got.pitch_rate)
    out.close()
    pty2.close()


def pulse(deg):
    counts = round((1500 + deg / 90 * 1000) * 1e-6 * 50 * 4096)
    return [0, 0, counts & 0xFF, counts >> 8]


def test_pca9685_board_that_lost_power_is_programmed_again_and_resumes_where_it_was():
    import contextlib

    from edge.outputs.pca9685 import Pca9685ServoOutput

    bus, clock = FlakySMBus(), [0.0]
    out = Pca9685ServoOutput(Pca9685Config(pan_pin=0, tilt_pin=1), ControlConfig(), bus=bus,
                             clock=lambda: clock[0])
    for _ in range(11):                           # 1 s at 45 deg/s
        out.send(update(yaw=45.0, pitch=0.0))
        clock[0] += 0.1
    assert bus.writes[-2] == (0x40, 0x06, pulse(45.0))
    bus.unplugged = True                          # the board loses power
    for _ in range(10):
        with contextlib.suppress(OSError):        # the loop survives an output that raises; the head matters here
            out.send(update(yaw=45.0, pitch=0.0))
        clock[0] += 0.1
    bus.unplugged, bus.writes = False, []         # back, asleep at its power-on defaults
    out.heartbeat(0, "IDLE")                      # idle: no command, yet the board must be running again
    assert bus.writes[:3] == [(0x40, 0x00, 0x30), (0x40, 0xFE, 121), (0x40, 0x00, 0x20)], bus.writes
    # the set-point the head had, not the 90 degrees the lost commands would have reached
    assert bus.writes[-2:] == [(0x40, 0x06, pulse(45.0)), (0x40, 0x0A, pulse(0.0))], bus.writes
    assert out.counters() == {"reconnects": 1, "write_errors": 10}


def test_pwm_servo_write_that_fails_does_not_move_the_set_point():
    pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from edge.outputs.pwm import PwmServoOutput

    class FlakyPin(MockPWMPin):
        broken = False

        def _set_state(self, value):
            if FlakyPin.broken:
                raise OSError("pin write failed")
            super()._set_state(value)

    factory, clock = MockFactory(pin_class=FlakyPin), [0.0]
    out = PwmServoOutput(PwmConfig(pan_pin=12, tilt_pin=13), ControlConfig(), pin_factory=factory,
                         clock=lambda: clock[0])
    for _ in range(11):
        out.send(update(yaw=30.0, pitch=0.0))
        clock[0] += 0.1
    assert out.pan_deg == pytest.approx(30.0)
    FlakyPin.broken = True
    for _ in range(10):
        with pytest.raises(OSError):              # the loop logs it and goes on
            out.send(update(yaw=30.0, pitch=0.0))
        clock[0] += 0.1
    FlakyPin.broken = False
    assert out.pan_deg == pytest.approx(30.0)
    out.send(update(yaw=30.0, pitch=0.0))
    assert factory.pin(12).state == pytest.approx((1.5 + 30 / 90) / 20, rel=1e-3)
    out.close()


def test_pelco_heartbeat_after_a_reconnect_stops_a_head_whose_speed_was_lost(tmp_path):
    out, clock, _ = sent_then_unplugged(tmp_path, pelco, update(yaw=30.0, pitch=0.0))
    out.send(update(yaw=40.0, pitch=0.0))         # a new speed, lost with the port
    pty2 = Pty(tmp_path)                          # the head was power-cycled: it stands still
    for _ in range(3):
        clock[0] += 1.0
        out.heartbeat(0, "TRACKING")              # a camera frame gap: no frame asks for motion
    assert frames7(pty2.read()) == [pelco_d.stop(1)]   # a stop, once, not the stale 40 deg/s
    out.send(update(yaw=40.0, pitch=0.0))         # a fresh frame still moves the head
    assert frames7(pty2.read()) == [pelco_d.speed_command(1, 40.0, 0.0, 60.0)]
    out.close()
    pty2.close()


def test_pelco_close_during_the_reopen_backoff_still_sends_the_last_stop(tmp_path):
    out, clock, _ = sent_then_unplugged(tmp_path, pelco, update(yaw=30.0, pitch=0.0))
    out.send(update(yaw=40.0, pitch=0.0))         # the write fails: the port is dropped
    out.send(update(yaw=50.0, pitch=0.0))         # the reopen fails: the backoff starts
    pty2 = Pty(tmp_path)                          # the adapter is back before the backoff is due
    out.close()
    assert frames7(pty2.read()) == [pelco_d.stop(1)]
    pty2.close()


def test_simplebgc_close_during_the_reopen_backoff_still_stops_and_releases(tmp_path):
    from edge.gimbal.protocols.simplebgc import MODE_NO_CONTROL, MODE_SPEED

    out, clock, _ = sent_then_unplugged(tmp_path, simplebgc, update(yaw=20.0, pitch=0.0))
    out.send(update(yaw=20.0, pitch=0.0))         # the write fails: the port is dropped
    out.send(update(yaw=20.0, pitch=0.0))         # the reopen fails: the backoff starts
    pty2 = Pty(tmp_path)
    out.close()
    got = sbgc_frames(pty2.read())
    assert [(f[0], f[1]) for f in got] == [((MODE_SPEED,) * 3, (0.0, 0.0, 0.0)),
                                           ((MODE_NO_CONTROL,) * 3, (0.0, 0.0, 0.0))], got
    pty2.close()


def test_mavlink_heartbeat_after_a_reconnect_stops_a_gimbal_whose_rate_was_lost(tmp_path):
    import math

    out, clock, _ = mavlink_turning_then_unplugged(tmp_path)
    out.send(update(yaw=30.0, pitch=0.0))         # a new rate, lost with the link
    pty2 = Pty(tmp_path)
    for _ in range(3):
        clock[0] += 30.0
        out.heartbeat(0, "TRACKING")              # a camera frame gap: no frame asks for motion
    sets = set_points(pty2)
    assert [(m.yaw_rate, m.pitch_rate) for m in sets] == [(0.0, 0.0)], sets
    out.send(update(yaw=30.0, pitch=0.0))         # a fresh frame still moves the gimbal
    sets = set_points(pty2)
    assert [m.yaw_rate for m in sets] == [pytest.approx(math.radians(30.0))], sets
    out.close()
    pty2.close()


def test_mavlink_close_while_the_link_is_down_still_sends_the_last_stop(tmp_path):
    import math

    out, clock, _ = mavlink_turning_then_unplugged(tmp_path)
    out.send(update(yaw=20.0, pitch=0.0))         # the write fails: the link is lost, the backoff starts
    assert not out.connected
    pty2 = Pty(tmp_path)                          # back before the backoff is due
    out.close()
    sets = set_points(pty2)
    assert [(m.yaw_rate, m.pitch_rate) for m in sets] == [(0.0, 0.0)], sets
    assert math.isnan(sets[0].yaw)
    pty2.close()


def test_pca9685_board_absent_at_start_is_a_lost_board_that_is_programmed_when_it_answers(caplog):
    from edge.outputs.pca9685 import Pca9685ServoOutput

    bus = FlakySMBus(unplugged=True)              # no ACK at 0x40: unpowered, or not wired yet
    with caplog.at_level("WARNING", logger="edge.outputs.pca9685"):
        out = Pca9685ServoOutput(Pca9685Config(pan_pin=0, tilt_pin=1), ControlConfig(), bus=bus)
        out.heartbeat(0, "IDLE")
    assert len(caplog.records) == 1 and "0x40" in caplog.records[0].getMessage()   # one line, no traceback
    assert bus.writes == [] and out.counters()["write_errors"] == 2
    bus.unplugged = False                         # powered up
    out.heartbeat(0, "IDLE")
    assert bus.writes[:3] == [(0x40, 0x00, 0x30), (0x40, 0xFE, 121), (0x40, 0x00, 0x20)], bus.writes
    assert bus.writes[-2:] == [(0x40, 0x06, pulse(0.0)), (0x40, 0x0A, pulse(0.0))], bus.writes
    out.close()
    assert bus.closed


def test_pca9685_i2c_bus_that_cannot_be_opened_is_one_config_line(tmp_path):
    pytest.importorskip("smbus2", reason="needs smbus2 (pip install 'edge-track[pi]')")
    import os

    from edge.errors import ConfigError
    from edge.outputs.pca9685 import Pca9685ServoOutput

    if os.path.exists("/dev/i2c-32"):
        pytest.skip("this machine has an I2C bus 32")
    with pytest.raises(ConfigError) as info:
        Pca9685ServoOutput(Pca9685Config(i2c_bus=32), ControlConfig())
    assert "i2c" in str(info.value).lower() and "\n" not in str(info.value)
