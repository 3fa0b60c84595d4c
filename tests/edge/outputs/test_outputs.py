"""Outputs through the real libraries' seams: pty pairs, pymavlink over UDP loopback, MockFactory."""

import os
import time

import pytest

from edge.config import ControlConfig
from edge.gimbal.protocols import boxproto, pelco_d, simplebgc
from edge.outputs.box_stream import BoxStreamConfig
from edge.outputs.mavlink import MavlinkConfig
from edge.outputs.pca9685 import Pca9685Config
from edge.outputs.pelco import PelcoDConfig
from edge.outputs.pwm import PwmConfig
from edge.outputs.simplebgc import SimpleBGCConfig
from support.gimbal_frames import sbgc_split, update
from support.loop_fakes import FixedTracker, FrameList
from support.seams import Pty, free_udp_port

serial = pytest.importorskip("serial", reason="needs pyserial (pip install 'edge-track[gimbal]')")


def test_box_stream_frames_heartbeat_and_stop(tmp_path):
    from edge.outputs.box_stream import BoxStreamOutput

    pty = Pty(tmp_path)
    out = BoxStreamOutput(BoxStreamConfig(port=pty.link, baud=115200, heartbeat_hz=10))
    for i in range(3):
        out.send(update(i))
    out.heartbeat(1000 + 3 * 33 + 150, "LOST")
    out.close()
    msgs = boxproto.BoxParser().feed(pty.read())
    assert [m.type for m in msgs] == [1, 1, 1, 2, 2]
    assert [m.seq for m in msgs] == [0, 1, 2, 3, 4]
    assert msgs[0].box_px == (300, 200, 40, 80) and msgs[3].state == "LOST" and msgs[-1].state == "IDLE"
    pty.close()


def test_box_stream_receives_target_commands(tmp_path):
    from edge.outputs.box_stream import BoxStreamOutput

    pty = Pty(tmp_path)
    out = BoxStreamOutput(BoxStreamConfig(type="serial_nmea", port=pty.link), ascii=True)
    pty.write(boxproto.encode_command("select", (10, 20, 30, 40)) + b"noise\n" + boxproto.encode_command("stop"))
    time.sleep(0.05)
    requests = out.poll()
    assert [r.kind for r in requests] == ["pixels", "stop"] and requests[0].box_in(640, 480) == (10, 20, 30, 40)
    out.send(update())
    assert pty.read().startswith(b"$EDTRK,0,TRACKING,300,200,40,80,")
    out.close()
    pty.close()


def test_serial_port_that_vanishes_is_reopened(tmp_path):
    from edge.outputs.simplebgc import SimpleBGCOutput
    from edge.outputs.transport import SerialLink

    pty = Pty(tmp_path)
    clock = [0.0]
    link = SerialLink(pty.link, 115200, backoff_initial_s=0.1, clock=lambda: clock[0])
    out = SimpleBGCOutput(SimpleBGCConfig(port=pty.link), link=link)
    out.send(update())
    assert [f[0] for f in sbgc_split(pty.read())] == [simplebgc.CMD_CONTROL_CONFIG, simplebgc.CMD_CONTROL]
    pty.close()                                   # unplugged: the device node is gone
    for _ in range(3):
        out.send(update())                        # never raises
    assert not link.connected and link.write_errors >= 1
    pty2 = Pty(tmp_path)                          # plugged back in under the same name
    clock[0] += 10.0
    out.send(update(yaw=0.0, pitch=0.0))
    assert link.connected and link.reconnects == 1
    (cmd, _), (cmd2, payload) = sbgc_split(pty2.read())   # the timeout again first: the board may have restarted
    assert (cmd, cmd2) == (simplebgc.CMD_CONTROL_CONFIG, simplebgc.CMD_CONTROL) and payload[:3] == bytes([1, 1, 1])
    assert out.counters() == {"reconnects": 1, "write_errors": link.write_errors}
    out.close()
    pty2.close()


def test_pelco_sends_changes_and_an_explicit_stop(tmp_path):
    from edge.outputs.pelco import PelcoDOutput

    pty = Pty(tmp_path)
    out = PelcoDOutput(PelcoDConfig(port=pty.link, address=1), max_rate_dps=60.0)
    out.send(update(yaw=30.0, pitch=0.0))
    out.send(update(yaw=30.0, pitch=0.0))         # unchanged: latched in the head, not resent
    out.send(update(active=False))
    out.close()
    data = pty.read()
    frames = [data[i:i + 7] for i in range(0, len(data), 7)]
    assert frames[0] == pelco_d.speed_command(1, 30.0, 0.0, 60.0)
    assert frames[1:] == [pelco_d.stop(1)] * (len(frames) - 1) and len(frames) >= 2
    pty.close()


def test_mavlink_rates_heartbeat_and_ground_station_commands():
    from edge.outputs.mavlink import DIALECT, MAV_CMD_CAMERA_TRACK_RECTANGLE, MavlinkGimbalOutput

    mavutil = pytest.importorskip("pymavlink.mavutil")
    port = free_udp_port()
    ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255, source_component=190,
                                        dialect=DIALECT)
    out = MavlinkGimbalOutput(MavlinkConfig(port=f"udpout:127.0.0.1:{port}"))
    out.send(update(yaw=10.0, pitch=-5.0))
    got = {}
    deadline = time.monotonic() + 3
    while len(got) < 2 and time.monotonic() < deadline:
        msg = ground.recv_match(blocking=True, timeout=0.2)
        if msg is not None:
            got[msg.get_type()] = msg
    hb, rates = got["HEARTBEAT"], got["GIMBAL_MANAGER_SET_PITCHYAW"]
    assert hb.get_srcComponent() == 191
    import math

    assert rates.yaw_rate == pytest.approx(math.radians(10.0), rel=1e-6)
    assert rates.pitch_rate == pytest.approx(math.radians(-5.0), rel=1e-6)
    assert math.isnan(rates.yaw) and math.isnan(rates.pitch)
    # The ground station asks to track a rectangle; we accept and acknowledge.
    ground.mav.command_long_send(1, 191, MAV_CMD_CAMERA_TRACK_RECTANGLE, 0, 0.25, 0.25, 0.75, 0.5, 0, 0, 0)
    requests = []
    deadline = time.monotonic() + 3
    while not requests and time.monotonic() < deadline:
        requests = out.poll()
        time.sleep(0.02)
    assert requests[0].kind == "rectangle" and requests[0].box_in(640, 480) == (160, 120, 320, 120)
    ack = ground.recv_match(type="COMMAND_ACK", blocking=True, timeout=3)
    assert ack.command == MAV_CMD_CAMERA_TRACK_RECTANGLE and ack.result == 0
    out.close()
    stop = ground.recv_match(type="GIMBAL_MANAGER_SET_PITCHYAW", blocking=True, timeout=3)
    assert stop.yaw_rate == 0.0 and stop.pitch_rate == 0.0
    ground.close()


def test_mavlink_silent_link_never_blocks(monkeypatch):
    mavutil = pytest.importorskip("pymavlink.mavutil")
    from edge.outputs.mavlink import MavlinkGimbalOutput

    reads, real = [], mavutil.mavfile.recv_match

    def recv_match(self, *args, **kwargs):
        reads.append((args, kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mavutil.mavfile, "recv_match", recv_match)
    out = MavlinkGimbalOutput(MavlinkConfig(port=f"udpout:127.0.0.1:{free_udp_port()}"))
    for i in range(50):
        out.send(update(i))
        assert out.poll() == []
    out.close()
    # Each poll read once, asking only for what had already arrived: none waited on the silent link.
    assert len(reads) == 50 and all(args == () and kw == {"blocking": False} for args, kw in reads), reads[:3]


def test_pwm_servos_with_mock_pins():
    pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from edge.outputs.pwm import PwmServoOutput

    factory = MockFactory(pin_class=MockPWMPin)
    clock = [0.0]
    out = PwmServoOutput(PwmConfig(pan_pin=12, tilt_pin=13), ControlConfig(pan_limits_deg=[-45, 45]),
                         pin_factory=factory, clock=lambda: clock[0])
    out.send(update(yaw=0.0, pitch=0.0))
    for _ in range(10):
        clock[0] += 0.1
        out.send(update(yaw=30.0, pitch=-10.0))
    assert out.pan_deg == pytest.approx(30.0) and out.tilt_deg == pytest.approx(-10.0)
    pan_pin = factory.pin(12)
    assert pan_pin.state == pytest.approx((1.5 + 30 / 90) / 20, rel=1e-3)   # 1.833 ms of a 20 ms frame
    for _ in range(20):
        clock[0] += 0.1
        out.send(update(yaw=30.0))
    assert out.pan_deg == 45.0                                              # limit
    out.send(update(active=False))
    assert out.pan_deg == 45.0                                              # hold on stop
    out.close()


class FakeSMBus:
    def __init__(self):
        self.writes = []

    def write_byte_data(self, addr, reg, value):
        self.writes.append((addr, reg, value))

    def write_i2c_block_data(self, addr, reg, data):
        self.writes.append((addr, reg, list(data)))


def test_pca9685_registers_and_pulses():
    from edge.outputs.pca9685 import Pca9685ServoOutput

    bus = FakeSMBus()
    clock = [0.0]
    out = Pca9685ServoOutput(Pca9685Config(pan_pin=0, tilt_pin=1), ControlConfig(), bus=bus,
                             clock=lambda: clock[0])
    assert bus.writes[:3] == [(0x40, 0x00, 0x30), (0x40, 0xFE, 121), (0x40, 0x00, 0x20)]   # 25e6/(4096*50)-1
    # Centre: 1500 us of 20 ms = 307 counts of 4096.
    assert bus.writes[4] == (0x40, 0x06, [0, 0, 307 & 0xFF, 307 >> 8])
    out.send(update(yaw=0.0))
    for _ in range(10):
        clock[0] += 0.1
        out.send(update(yaw=45.0, pitch=0.0))
    clock[0] += 5.0
    out.send(update(yaw=0.0, pitch=0.0))       # after a stall: one capped step, no jump
    assert out.pan_deg == pytest.approx(45.0)
    counts = round((1500 + 45 / 90 * 1000) * 1e-6 * 50 * 4096)
    assert bus.writes[-2] == (0x40, 0x06, [0, 0, counts & 0xFF, counts >> 8])


def test_box_stream_takes_the_next_command_after_line_noise(tmp_path):
    from edge.outputs.box_stream import BoxStreamOutput

    pty = Pty(tmp_path)
    out = BoxStreamOutput(BoxStreamConfig(type="serial_nmea", port=pty.link), ascii=True)
    # 5,000 bytes without a line end (a baud mismatch, a floating input), then a valid command.
    junk = bytes((i * 37) % 251 for i in range(5000)).replace(b"\n", b"x")
    pty.write(junk)
    time.sleep(0.05)
    assert out.poll() == []
    pty.write(boxproto.encode_command("select", (10, 20, 30, 40)))
    time.sleep(0.05)
    requests = []
    for _ in range(20):                      # however the loop happens to slice the reads
        requests += out.poll()
    assert [r.kind for r in requests] == ["pixels"] and requests[0].pixels == (10, 20, 30, 40)
    pty.write(b"$EDSTP*00\r\n")           # a bad checksum is counted, not acted on
    time.sleep(0.05)
    assert out.poll() == [] and out.counters()["bad_commands"] == 1
    out.close()
    pty.close()


def test_dry_run_keeps_the_box_stream_heartbeat_and_sends_no_box(tmp_path):
    import threading

    from edge.config import load_config
    from edge.outputs.box_stream import BoxStreamOutput
    from edge.runtime.loop import TargetRequest, TrackingLoop

    pty = Pty(tmp_path)
    out = BoxStreamOutput(BoxStreamConfig(port=pty.link, heartbeat_hz=5))
    clock = [100.0]

    def tick():                                  # 100 ms of loop time per call
        clock[0] += 0.1
        return clock[0]

    loop = TrackingLoop(tracker=FixedTracker(), grabber=FrameList(30), outputs=[out], config=load_config({}),
                        clock=tick, initial_target=TargetRequest(box=(300, 200, 40, 40)))
    loop.set_dry_run(True)
    loop.run(threading.Event())
    msgs = boxproto.BoxParser().feed(pty.read())
    assert all(m.type == boxproto.TYPE_HEARTBEAT for m in msgs)            # no box reaches the receiver
    # Receivers act on TRACKING (docs/serial-box-protocol.md): a dry run's beats say IDLE, so nothing moves.
    assert not [m for m in msgs if m.state == "TRACKING"]
    assert len(msgs) >= 5                                                   # ~3 s at 5 Hz: the link stays alive
    assert msgs[-1].state == "IDLE"
    pty.close()


def test_mavlink_bad_port_is_a_one_line_config_error(tmp_path):
    pytest.importorskip("pymavlink.mavutil")
    from edge.errors import ConfigError
    from edge.outputs.mavlink import MavlinkGimbalOutput

    # A missing serial device is no longer one of these: it may appear after boot (see below).
    for port, words in (("udpout:127.0.0.1:notaport", "notaport"), (f"{tmp_path / 'ttyACM9'},fast", "fast")):
        with pytest.raises(ConfigError) as info:
            MavlinkGimbalOutput(MavlinkConfig(port=port))
        assert words in str(info.value) and "\n" not in str(info.value)


def test_run_with_a_bad_mavlink_port_exits_2_in_one_line(tmp_path):
    pytest.importorskip("pymavlink.mavutil")
    import json
    import subprocess
    import sys

    import edge

    folder = os.path.join(os.path.dirname(edge.__file__), "data", "sample", "Crossing", "img")
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": folder}, "tracking": {"init": "center:40x40"},
                               "outputs": [{"type": "mavlink", "port": "udpout:127.0.0.1:notaport"}]}))
    proc = subprocess.run([sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())",
                           "run", "--config", str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1 and "notaport" in proc.stderr


def read_mavlink(pty, wait=0.3):
    from pymavlink.dialects.v20 import common

    parser = common.MAVLink(None)
    parser.robust_parsing = True
    return [m.get_type() for m in parser.parse_buffer(pty.read(wait)) or []]


def test_mavlink_serial_link_that_vanishes_is_reopened(tmp_path, caplog):
    pytest.importorskip("pymavlink.mavutil")
    from edge.outputs.mavlink import MavlinkGimbalOutput

    pty = Pty(tmp_path)
    clock = [0.0]
    out = MavlinkGimbalOutput(MavlinkConfig(port=pty.link, baud=115200), clock=lambda: clock[0])
    out.send(update())
    assert "GIMBAL_MANAGER_SET_PITCHYAW" in read_mavlink(pty)
    pty.close()                                   # unplugged: the device node is gone
    with caplog.at_level("INFO", logger="edge.outputs.mavlink"):
        for _ in range(5):
            clock[0] += 0.05
            out.send(update())                    # never raises
            out.poll()
        assert not out.connected and out.write_errors >= 1
        pty2 = Pty(tmp_path)                      # plugged back in under the same name
        clock[0] += 30.0
        out.send(update())
        assert out.connected and out.reconnects == 1
        assert "GIMBAL_MANAGER_SET_PITCHYAW" in read_mavlink(pty2)
        assert out.counters() == {"reconnects": 1, "write_errors": out.write_errors}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "lost" in lines[0] and "reconnected" in lines[1]   # one line per change
    out.close()
    pty2.close()


def test_mavlink_port_check_without_opening(tmp_path):
    from edge.errors import ConfigError
    from edge.outputs.transport import check_mavlink_port as check_port

    device = tmp_path / "ttyACM0"
    device.write_text("")
    # A serial device that is not there (yet) passes: like the other serial outputs' adapters, it may
    # appear after boot; only the port's form is checked.
    for good in ("udpout:127.0.0.1:14550", "udpin:0.0.0.0:14550", "tcp:10.0.0.2:5760", str(device), f"{device},57600",
                 str(tmp_path / "ttyACM9"), f"{tmp_path / 'ttyACM9'},57600"):
        check_port(good)
    for bad in ("udpout:127.0.0.1:notaport", "udpout:127.0.0.1:0", "udpout:127.0.0.1:70000", "udpout:14550",
                f"{tmp_path / 'ttyACM9'},fast", ",57600", ""):
        with pytest.raises(ConfigError):
            check_port(bad)


def test_mavlink_serial_device_missing_at_start_is_a_down_link_not_an_error(tmp_path, caplog):
    pytest.importorskip("pymavlink.mavutil")
    from edge.outputs.mavlink import MavlinkGimbalOutput

    port = str(tmp_path / "tty")
    clock = [0.0]
    with caplog.at_level("INFO", logger="edge.outputs.mavlink"):
        out = MavlinkGimbalOutput(MavlinkConfig(port=port, baud=115200), clock=lambda: clock[0])
        assert not out.connected
        for _ in range(5):
            clock[0] += 0.05
            out.send(update())                    # never raises
            out.poll()
        assert not out.connected and out.write_errors >= 5
        pty = Pty(tmp_path)                       # the autopilot's USB appears after boot
        clock[0] += 30.0
        out.send(update())
        assert out.connected and out.reconnects == 1
        assert "GIMBAL_MANAGER_SET_PITCHYAW" in read_mavlink(pty)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "down" in lines[0] and port in lines[0] and "reconnected" in lines[1], lines
    out.close()
    pty.close()



class _FakeSerialModule:
    """pyserial's seam: Serial() opens unless ``error`` is set; writes fail once ``unplugged``."""

    class SerialException(OSError):
        pass

    def __init__(self, clock):
        self.clock, self.error, self.opens = clock, None, []
        module = self

        class Serial:
            def __init__(self, port, baud, **kw):
                module.opens.append(module.clock[0])
                if module.error:
                    raise OSError(module.error)

            def write(self, data):
                if module.error:
                    raise OSError(module.error)

            def close(self):
                pass

        self.Serial = Serial


def test_an_unplugged_serial_adapter_is_one_warning_and_one_backoff_step_per_attempt(caplog):
    from edge.outputs.transport import SerialLink

    clock = [0.0]
    fake = _FakeSerialModule(clock)
    link = SerialLink("/dev/ttyUSB0", 115200, backoff_initial_s=0.1, backoff_max_s=0.8, serial_module=fake,
                      clock=lambda: clock[0])
    fake.error = "[Errno 2] No such file or directory: '/dev/ttyUSB0'"     # unplugged
    with caplog.at_level("DEBUG", logger="edge.outputs.transport"):
        for _ in range(1000):                                               # 10 s of frames
            link.write(b"x")
            clock[0] = round(clock[0] + 0.01, 2)
        fake.error = "[Errno 13] Permission denied: '/dev/ttyUSB0'"         # a new reason: one more line
        for _ in range(300):
            link.write(b"x")
            clock[0] = round(clock[0] + 0.01, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3, warnings              # lost, unavailable (No such file), unavailable (Permission)
    assert "lost" in warnings[0] and "No such file" in warnings[1] and "Permission" in warnings[2]
    # The loss itself is not an attempt: the first reopen comes at once, then the waits double.
    retries = fake.opens[1:]
    gaps = [round(b - a, 2) for a, b in zip(retries, retries[1:])]
    assert gaps[:4] == [0.1, 0.2, 0.4, 0.8], gaps
    assert not link.connected and link.write_errors >= 1000
