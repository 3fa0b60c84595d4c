"""MAVLink gimbal protocol v2 through pymavlink: GIMBAL_MANAGER_SET_PITCHYAW rates, HEARTBEAT at
1 Hz, and tracking commands from a ground station (MAV_CMD_CAMERA_TRACK_RECTANGLE / _POINT /
_STOP_TRACKING), acknowledged with COMMAND_ACK.

A silent link never blocks the loop: sends are fire-and-forget datagrams (or serial writes), and
received commands are polled without waiting.
"""

from __future__ import annotations

import logging
import math
import os
import time

from edge.outputs.base import TrackRequest

log = logging.getLogger("edge.outputs.mavlink")

# The gimbal protocol v2 messages exist only in MAVLink 2; pymavlink reads this at set_dialect().
os.environ.setdefault("MAVLINK20", "1")
DIALECT = "common"

MAV_CMD_CAMERA_TRACK_POINT = 2004
MAV_CMD_CAMERA_TRACK_RECTANGLE = 2005
MAV_CMD_CAMERA_STOP_TRACKING = 2010
MAV_COMP_ID_ONBOARD_COMPUTER = 191
NAN = float("nan")


class MavlinkGimbalOutput:
    name = "mavlink"

    def __init__(self, cfg, *, connection=None, clock=time.monotonic) -> None:
        if connection is None:
            try:
                from pymavlink import mavutil
            except ImportError:
                from edge.errors import ConfigError

                raise ConfigError("the mavlink output needs pymavlink: pip install 'edge-track[gimbal]'") from None
            connection = mavutil.mavlink_connection(cfg.port, source_system=cfg.system_id,
                                                    source_component=cfg.component_id, baud=cfg.baud,
                                                    dialect=DIALECT)
        self.conn = connection
        self.mav = connection.mav
        self._clock = clock
        self._last_heartbeat = -1e9
        self._target = (0, 0)  # broadcast until an autopilot is heard
        self._closed = False

    # -- sending -------------------------------------------------------------------------------
    def _heartbeat_if_due(self) -> None:
        now = self._clock()
        if now - self._last_heartbeat >= 1.0:
            from pymavlink.dialects.v20 import common as m

            self.mav.heartbeat_send(m.MAV_TYPE_ONBOARD_CONTROLLER, m.MAV_AUTOPILOT_INVALID, 0, 0, m.MAV_STATE_ACTIVE)
            self._last_heartbeat = now

    def _set_rates(self, yaw_dps: float, pitch_dps: float) -> None:
        self.mav.gimbal_manager_set_pitchyaw_send(
            self._target[0], self._target[1], 0, 0,  # flags 0: yaw in the vehicle frame; device 0: all
            NAN, NAN, math.radians(pitch_dps), math.radians(yaw_dps))

    def send(self, update) -> None:
        self._safe(self._heartbeat_if_due)
        cmd = update.command
        self._safe(lambda: self._set_rates(cmd.yaw_rate_dps if cmd.active else 0.0,
                                           cmd.pitch_rate_dps if cmd.active else 0.0))

    def heartbeat(self, now_ms: int, state: str) -> None:
        self._safe(self._heartbeat_if_due)

    def stop(self) -> None:
        self._safe(lambda: self._set_rates(0.0, 0.0))

    def recenter(self) -> None:
        """Angles 0/0 (rates NaN = unused): the gimbal manager's neutral forward position."""
        self._safe(lambda: self.mav.gimbal_manager_set_pitchyaw_send(self._target[0], self._target[1], 0, 0,
                                                                     0.0, 0.0, NAN, NAN))

    def close(self) -> None:
        if not self._closed:
            self.stop()
            self._closed = True
            self._safe(self.conn.close)

    def _safe(self, fn) -> None:
        try:
            fn()
        except OSError as exc:   # a link that is down must not stop tracking
            log.warning("mavlink send failed: %s", exc)

    # -- receiving -----------------------------------------------------------------------------
    def poll(self) -> list[TrackRequest]:
        """Handle pending messages without waiting; returns the tracking requests received."""
        got = []
        while True:
            try:
                msg = self.conn.recv_match(blocking=False)
            except OSError:
                break
            if msg is None:
                break
            kind = msg.get_type()
            if kind == "HEARTBEAT" and msg.get_srcComponent() == 1:
                self._target = (msg.get_srcSystem(), 1)
            elif kind == "COMMAND_LONG":
                request = self._command(msg)
                if request is not None:
                    got.append(request)
        return got

    def _command(self, msg):
        from pymavlink.dialects.v20 import common as m

        request = None
        if msg.command == MAV_CMD_CAMERA_TRACK_RECTANGLE:
            rect = (msg.param1, msg.param2, msg.param3, msg.param4)
            if all(0.0 <= v <= 1.0 for v in rect) and rect[2] > rect[0] and rect[3] > rect[1]:
                request = TrackRequest("rectangle", rect=rect)
        elif msg.command == MAV_CMD_CAMERA_TRACK_POINT:
            if 0.0 <= msg.param1 <= 1.0 and 0.0 <= msg.param2 <= 1.0:
                request = TrackRequest("point", point=(msg.param1, msg.param2), radius=max(msg.param3, 0.0))
        elif msg.command == MAV_CMD_CAMERA_STOP_TRACKING:
            request = TrackRequest("stop")
        else:
            return None
        result = m.MAV_RESULT_ACCEPTED if request is not None else m.MAV_RESULT_DENIED
        self._safe(lambda: self.mav.command_ack_send(msg.command, result, 0, 0,
                                                     msg.get_srcSystem(), msg.get_srcComponent()))
        return request
