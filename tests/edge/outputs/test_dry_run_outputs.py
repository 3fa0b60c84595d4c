"""A dry run sends no motion of any kind, a re-centre included: each head through its real seam (a pty
for SimpleBGC, pymavlink on UDP loopback, the SMBus seam for the PCA9685, gpiozero's MockFactory)."""

import math

import pytest

from edge.config import ControlConfig, load_config
from edge.gimbal.protocols.simplebgc import MODE_SPEED
from edge.outputs.mavlink import MavlinkConfig
from edge.outputs.pca9685 import Pca9685Config
from edge.outputs.pelco import PelcoDConfig
from edge.outputs.pwm import PwmConfig
from edge.outputs.simplebgc import SimpleBGCConfig
from edge.target import TargetRequest
from support.gimbal_frames import sbgc_frames
from support.loop_fakes import FixedTracker, FrameList
from support.seams import FlakySMBus, Pty, free_udp_port

pytest.importorskip("serial", reason="needs pyserial (pip install 'edge-track[gimbal]')")
mavutil = pytest.importorskip("pymavlink.mavutil")


def test_recentre_in_a_dry_run_moves_no_head(tmp_path):
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from edge.outputs.mavlink import DIALECT, MavlinkGimbalOutput
    from edge.outputs.pca9685 import Pca9685ServoOutput
    from edge.outputs.pwm import PwmServoOutput
    from edge.outputs.simplebgc import SimpleBGCOutput
    from edge.runtime.loop import TrackingLoop

    pty, port = Pty(tmp_path), free_udp_port()
    ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", source_system=255, source_component=190,
                                        dialect=DIALECT)
    bus, pins = FlakySMBus(), MockFactory(pin_class=MockPWMPin)
    control = ControlConfig()
    outputs = [SimpleBGCOutput(SimpleBGCConfig(port=pty.link), control),
               MavlinkGimbalOutput(MavlinkConfig(port=f"udpout:127.0.0.1:{port}")),
               Pca9685ServoOutput(Pca9685Config(pan_pin=0, tilt_pin=1), control, bus=bus),
               PwmServoOutput(PwmConfig(pan_pin=12, tilt_pin=13), control, pin_factory=pins)]
    clock = [100.0]

    def tick():
        clock[0] += 0.1
        return clock[0]

    loop = TrackingLoop(tracker=FixedTracker(), grabber=FrameList(40), outputs=outputs, config=load_config({}),
                        clock=tick, initial_target=TargetRequest(box=(300, 200, 40, 40)))
    for _ in range(10):                           # tracking a target right of centre: the heads turn
        loop.step()
    assert outputs[2].pan_deg > 0 and outputs[3].pan_deg > 0
    pty.read()
    while ground.recv_match(blocking=True, timeout=0.2) is not None:
        pass
    bus.writes.clear()
    pwm_pulse = pins.pin(12).state

    loop.set_dry_run(True)
    loop.request(TargetRequest(recenter=True, source="web"))   # Re-centre pressed during the dry run
    for _ in range(10):
        loop.step()
    assert loop.state == "IDLE"

    for modes, speeds, angles in sbgc_frames(pty.read()):
        assert modes == (MODE_SPEED,) * 3 and speeds == (0.0, 0.0, 0.0), (modes, speeds, angles)   # holds only
    sets = []
    while (msg := ground.recv_match(type="GIMBAL_MANAGER_SET_PITCHYAW", blocking=True, timeout=0.3)) is not None:
        sets.append(msg)
    assert sets, "the dry run starts with a hold"
    for msg in sets:
        assert math.isnan(msg.yaw) and math.isnan(msg.pitch) and (msg.yaw_rate, msg.pitch_rate) == (0.0, 0.0)
    assert bus.writes == []                       # the servos keep their pulses
    assert pins.pin(12).state == pwm_pulse and outputs[3].pan_deg > 0
    loop.shutdown()
    ground.close()
    pty.close()


class PausingFrames(FrameList):
    """Frames, then none for a while (a camera hiccup shorter than frame_timeout_s), never finished."""

    def __init__(self, n):
        super().__init__(n)
        self.paused = False

    def get(self, timeout):
        return None if self.paused else super().get(timeout)


def test_dry_run_turned_on_between_frames_holds_the_head_at_once(tmp_path):
    from edge.gimbal.protocols import pelco_d
    from edge.outputs.pelco import PelcoDOutput
    from edge.runtime.loop import TrackingLoop
    from support.gimbal_frames import frames7

    pty = Pty(tmp_path)
    out = PelcoDOutput(PelcoDConfig(port=pty.link, address=1))
    clock = [100.0]

    def tick():
        clock[0] += 0.1
        return clock[0]

    grabber = PausingFrames(40)
    loop = TrackingLoop(tracker=FixedTracker(), grabber=grabber, outputs=[out], config=load_config({}), clock=tick,
                        initial_target=TargetRequest(box=(300, 200, 40, 40)))
    for _ in range(10):
        loop.step()
    assert frames7(pty.read())[-1] != pelco_d.stop(1)                 # the head is turning: the speed latches
    grabber.paused = True
    loop.step()                                                        # a frame late: the head keeps turning
    loop.set_dry_run(True)
    loop.step()                                                        # still no frame, well within the timeout
    assert frames7(pty.read()) == [pelco_d.stop(1)]
    loop.shutdown()
    pty.close()
