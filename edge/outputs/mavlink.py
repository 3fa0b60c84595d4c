"""MAVLink gimbal protocol v2 through pymavlink (edge.outputs.transport opens the link):
GIMBAL_MANAGER_SET_PITCHYAW rates, HEARTBEAT at 1 Hz, and tracking commands from a ground station
(MAV_CMD_CAMERA_TRACK_RECTANGLE / _POINT / _STOP_TRACKING), acknowledged with COMMAND_ACK. With
``camera_component_id`` (100-105; off by default) a second component speaks the camera protocol v2's tracking
part: ``edge.outputs.mavlink_camera``.

A silent link never blocks the loop: sends are fire-and-forget datagrams (or serial writes), and
received commands are polled without waiting.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

from edge.errors import ConfigError
from edge.io.libraries import PYMAVLINK
from edge.io.log_limit import RateLimitedLog
from edge.outputs.base import MAX_READS_PER_POLL, OutputConfig, OutputKind, RemoteTarget, output_type, required_port
from edge.outputs.driver import HeadDriver
from edge.outputs.mavlink_camera import CAMERA_COMMANDS, UNSUPPORTED, CameraComponent
from edge.outputs.transport import MavlinkLink, check_mavlink_port, is_serial_port, open_mavlink
from edge.schema import checked, num


def _camera_id(value, section) -> None:
    """0, or a camera id of MAVLink's own (100-105) that is not the gimbal client's: an id a real
    camera or the autopilot has would make this output answer, and act on, what is meant for it."""
    if isinstance(value, bool) or not isinstance(value, int) or not (value == 0 or 100 <= value <= 105):
        raise ValueError(f"must be 0 (no camera component) or one of MAVLink's camera ids 100-105, got {value!r}")
    if value == section.component_id:
        raise ValueError(f"{value} is also component_id: the camera needs its own id")

log = logging.getLogger("edge.outputs.mavlink")

# The gimbal protocol v2 messages exist only in MAVLink 2; pymavlink reads this at set_dialect().
os.environ.setdefault("MAVLINK20", "1")
DIALECT = "common"

MAV_CMD_CAMERA_TRACK_POINT = 2004
MAV_CMD_CAMERA_TRACK_RECTANGLE = 2005
MAV_CMD_CAMERA_STOP_TRACKING = 2010
MAV_COMP_ID_ONBOARD_COMPUTER = 191
NAN = float("nan")


@dataclass
class MavlinkConfig(OutputConfig):
    type: str = output_type("mavlink")
    # MAVLink URL: udpout:HOST:PORT, udpin:, udpbcast:, udp:, tcp:, tcpin:, or a serial device (/dev/ttyACM0[,BAUD])
    port: str = required_port(check_mavlink_port)
    baud: int = num(115200, 300, 4000000)   # a serial port's
    system_id: int = num(1, 1, 255)
    component_id: int = num(191, 1, 255)
    # the camera protocol's component, one of MAVLink's camera ids 100-105 that no real camera on the
    # vehicle has (it answers what is sent to that id); 0 (default): none
    camera_component_id: int = checked(_camera_id, default=0)


class MavlinkGimbalOutput(HeadDriver):
    """The gimbal manager acts on the last GIMBAL_MANAGER_SET_PITCHYAW it got: that is the head's
    standing command (edge.outputs.driver), written again after a failed send and on a reopened link;
    on UDP and TCP, which hand a message to the socket whether or not anyone gets it (udpin drops it
    until a peer is heard), a standing stop or re-centre is sent again with every HEARTBEAT."""

    name = "mavlink"

    def __init__(self, cfg, *, connect=None, clock=time.monotonic, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 5.0) -> None:
        """connect: returns a new pymavlink connection (default: ``open_mavlink`` on cfg.port); it is
        called again, with backoff, after the link fails."""
        self.port = cfg.port
        self._network = not is_serial_port(cfg.port)
        self.address = (cfg.system_id, cfg.component_id)
        self.camera_id = cfg.camera_component_id   # 0: no camera component
        if self.camera_id == cfg.component_id:
            raise ConfigError(f"mavlink camera_component_id {self.camera_id} is also component_id: give the camera "
                              "its own (100-105 are MAVLink's camera ids) or 0 for none")
        self._camera = None
        # A flood of bad commands must not flood the journal: a few "denied" lines a second.
        self._log = RateLimitedLog(log, interval_s=1.0, burst=3, clock=clock)
        self._clock = clock
        connect = connect or (lambda: open_mavlink(cfg.port, baud=cfg.baud, system_id=cfg.system_id,
                                                   component_id=cfg.component_id, dialect=DIALECT))
        self.link = MavlinkLink(connect, port=cfg.port, log=log, clock=clock, backoff_initial_s=backoff_initial_s,
                                backoff_max_s=backoff_max_s)
        self._last_heartbeat = -1e9
        self._target = (0, 0)  # broadcast until an autopilot is heard

    @property
    def conn(self):
        return self.link.conn

    @property
    def mav(self):
        return self.link.conn.mav

    @property
    def camera(self) -> CameraComponent | None:
        """The camera component (made on first use: its encoder needs pymavlink), or None."""
        if self._camera is None and self.camera_id:
            from pymavlink.dialects.v20 import common as m

            encoder = m.MAVLink(_LinkWriter(self), srcSystem=self.address[0], srcComponent=self.camera_id)
            self._camera = CameraComponent(encoder, self.link.send, clock=self._clock)
        return self._camera

    # -- sending -------------------------------------------------------------------------------
    def _heartbeat_if_due(self) -> bool:
        """The 1 Hz HEARTBEAT; True when one was handed to the link now."""
        now = self._clock()
        if now - self._last_heartbeat < 1.0:
            return False
        from pymavlink.dialects.v20 import common as m

        if not self.link.send(lambda: self.mav.heartbeat_send(m.MAV_TYPE_ONBOARD_CONTROLLER, m.MAV_AUTOPILOT_INVALID,
                                                              0, 0, m.MAV_STATE_ACTIVE)):
            return False
        self._last_heartbeat = now
        return True

    def _set_point(self, pitch: float, yaw: float, pitch_rate: float, yaw_rate: float) -> None:
        """Make this set-point (radians, NaN = unused) the standing command and send it; it is
        motion when a rate is other than zero (a stop is 0/0, a re-centre NaN)."""
        def send() -> None:   # to the autopilot heard last (flags 0: yaw in the vehicle frame; device 0: all)
            self.mav.gimbal_manager_set_pitchyaw_send(self._target[0], self._target[1], 0, 0,
                                                      pitch, yaw, pitch_rate, yaw_rate)

        moving = any(r == r and r != 0.0 for r in (pitch_rate, yaw_rate))
        self._command(send, always=True, moving=moving)

    def send(self, update) -> None:
        self._heartbeat_if_due()
        cmd = update.command
        yaw, pitch = (cmd.yaw_rate_dps, cmd.pitch_rate_dps) if cmd.active else (0.0, 0.0)
        self._set_point(NAN, NAN, math.radians(pitch), math.radians(yaw))
        if self.camera is not None:
            self.camera.tracked(update.state, update.box, update.frame_size)
            self.camera.step()

    def heartbeat(self, now_ms: int, state: str) -> None:
        """Hold still: a standing stop or re-centre is sent again if the link may lack it (and, on a
        network link, with every HEARTBEAT); a rate the link may lack is not (only a frame asks for
        motion): a stop takes its place, so a gimbal reset during a frame gap stays still."""
        beat = self._heartbeat_if_due()
        if self.camera is not None:
            self.camera.holding(state)
            self.camera.step()
        self._hold_still(again=beat and self._network)

    def stop(self) -> None:
        self._set_point(NAN, NAN, 0.0, 0.0)

    def recenter(self) -> None:
        """Angles 0/0 (rates NaN = unused): the gimbal manager's neutral forward position."""
        self._set_point(0.0, 0.0, NAN, NAN)

    def _before_close(self) -> None:
        if self._camera is not None and self.link.connected:   # a ground station drawing the box is told it is gone
            self._camera.holding("IDLE")
            self._camera.step()

    # -- receiving -----------------------------------------------------------------------------
    def poll(self) -> list[RemoteTarget]:
        """Handle pending messages without waiting; returns the tracking requests received."""
        got = []
        for _ in range(MAX_READS_PER_POLL):
            if self.link.up() is None:
                break
            try:
                msg = self.conn.recv_match(blocking=False)
            except OSError as exc:
                self.link.lost(exc)
                break
            if msg is None:
                break
            kind = msg.get_type()
            if kind == "HEARTBEAT" and msg.get_srcComponent() == 1 and msg.get_srcSystem() == self.address[0]:
                self._target = (msg.get_srcSystem(), 1)   # our vehicle's autopilot: never another vehicle's
            elif kind == "COMMAND_LONG" and self._addressed_to_us(msg):
                request = self._track_command(msg)
                if request is not None:
                    got.append(request)
        return got

    def _addressed_to_us(self, msg) -> bool:
        """A command for this system and one of its components (the camera's too), or broadcast
        (0) to either: one for another camera or vehicle on the link is not ours to act on, nor to
        acknowledge."""
        system, component = self.address
        return msg.target_system in (0, system) and msg.target_component in (0, component, self.camera_id or component)

    def _track_command(self, msg):
        from pymavlink.dialects.v20 import common as m

        to_camera = self.camera is not None and msg.target_component == self.camera_id
        if msg.command in CAMERA_COMMANDS:
            return self._camera_command(msg, to_camera)
        request = None
        try:   # checked before the answer: ACCEPTED means the loop will take it
            if msg.command == MAV_CMD_CAMERA_TRACK_RECTANGLE:
                request = RemoteTarget("rectangle", rect=(msg.param1, msg.param2, msg.param3, msg.param4))
            elif msg.command == MAV_CMD_CAMERA_TRACK_POINT:
                request = RemoteTarget("point", point=(msg.param1, msg.param2), radius=msg.param3)
            elif msg.command == MAV_CMD_CAMERA_STOP_TRACKING:
                request = RemoteTarget("stop")
            else:
                if msg.target_component != 0:   # addressed to us, and we do not do it: say so
                    self._ack(msg, UNSUPPORTED, to_camera)
                return None
        except ValueError as exc:
            self._log.info("denied a tracking command from %d/%d: %s", msg.get_srcSystem(), msg.get_srcComponent(),
                           exc)
        result = m.MAV_RESULT_ACCEPTED if request is not None else m.MAV_RESULT_DENIED
        if request is not None and request.kind != "stop" and self.camera is not None:
            self.camera.requested(request.kind)
        self._ack(msg, result, to_camera)
        return request

    def _camera_command(self, msg, to_camera: bool) -> None:
        """A camera-protocol request: answered by the camera component (when there is one), then the
        message asked for. A broadcast one we do not serve is left to the component that does."""
        if self.camera is None or not (to_camera or msg.target_component == 0):
            if msg.target_component != 0:
                self._ack(msg, UNSUPPORTED, False)
            return None
        result, then = self.camera.command(msg)
        if result == UNSUPPORTED and not to_camera:
            return None
        self._ack(msg, result, True)
        if then is not None:
            then()
        return None

    def _ack(self, msg, result: int, from_camera: bool) -> None:
        """COMMAND_ACK to the sender, from the component it addressed (the camera's or ours)."""
        camera = self.camera if from_camera else None
        self.link.send(lambda: (camera.mav if camera is not None else self.mav).command_ack_send(
            msg.command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()))


class _LinkWriter:
    """The camera component's encoder writes through whatever connection the output has now
    (it is replaced on a reconnect)."""

    def __init__(self, output: MavlinkGimbalOutput) -> None:
        self._output = output

    def write(self, buf) -> None:
        self._output.conn.write(buf)


MAVLINK = OutputKind(MavlinkConfig, lambda cfg, control_cfg: MavlinkGimbalOutput(cfg), needs=PYMAVLINK)
