"""The MAVLink camera protocol v2's tracking part, for the mavlink output: edge-track shows itself
to ground stations as a camera component (its own HEARTBEAT, MAV_TYPE_CAMERA) that can track a
rectangle or a point, and reports what it tracks.

- ``MAV_CMD_REQUEST_MESSAGE`` (and the older ``MAV_CMD_REQUEST_CAMERA_INFORMATION``) for
  ``CAMERA_INFORMATION``: the tracking capability flags (a ground station offers tracking only to
  a camera that has them); for ``CAMERA_TRACKING_IMAGE_STATUS``: the status now.
- ``MAV_CMD_SET_MESSAGE_INTERVAL`` for ``CAMERA_TRACKING_IMAGE_STATUS``: its rate (default 5 Hz;
  -1 stops it, 0 restores the default).
- ``CAMERA_TRACKING_IMAGE_STATUS`` at that rate while a target is tracked (ACTIVE, with the
  normalised rectangle or point) or lost (ERROR); IDLE once when tracking stops.

edge-track is a camera here, not a gimbal manager: it drives the autopilot's gimbal manager with
GIMBAL_MANAGER_SET_PITCHYAW, so a request for GIMBAL_MANAGER_INFORMATION is UNSUPPORTED.

The status goes out from the output's send() and heartbeat(), which the loop calls once a step:
a rate above the frame rate (10 Hz without frames) is capped there.
"""

from __future__ import annotations

import math
import time

import edge

MAV_CMD_REQUEST_MESSAGE = 512
MAV_CMD_REQUEST_CAMERA_INFORMATION = 521   # the older request some ground stations still send
MAV_CMD_SET_MESSAGE_INTERVAL = 511
MSG_CAMERA_INFORMATION = 259
MSG_CAMERA_TRACKING_IMAGE_STATUS = 275
MSG_GIMBAL_MANAGER_INFORMATION = 280
CAMERA_COMMANDS = (MAV_CMD_REQUEST_MESSAGE, MAV_CMD_REQUEST_CAMERA_INFORMATION, MAV_CMD_SET_MESSAGE_INTERVAL)

CAMERA_CAP_FLAGS_HAS_TRACKING_POINT = 512
CAMERA_CAP_FLAGS_HAS_TRACKING_RECTANGLE = 1024
TRACKING_FLAGS = CAMERA_CAP_FLAGS_HAS_TRACKING_POINT | CAMERA_CAP_FLAGS_HAS_TRACKING_RECTANGLE

# CAMERA_TRACKING_STATUS_FLAGS, CAMERA_TRACKING_MODE, CAMERA_TRACKING_TARGET_DATA
STATUS_IDLE, STATUS_ACTIVE, STATUS_ERROR = 0, 1, 2
MODE_NONE, MODE_POINT, MODE_RECTANGLE = 0, 1, 2
TARGET_DATA_NONE, TARGET_DATA_IN_STATUS = 0, 4

DEFAULT_STATUS_INTERVAL_S = 0.2    # 5 Hz until a ground station asks for another rate
NAN = float("nan")

# MAV_RESULT
ACCEPTED, DENIED, UNSUPPORTED = 0, 2, 3


def firmware_version() -> int:
    """edge-track's version as CAMERA_INFORMATION encodes it: (dev << 24) | (patch << 16) |
    (minor << 8) | major."""
    parts = [int(p) if p.isdigit() else 0 for p in edge.__version__.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return ((patch & 0xFF) << 16) | ((minor & 0xFF) << 8) | (major & 0xFF)


def _name(text: str) -> list[int]:
    return list(text.encode()[:32].ljust(32, b"\0"))


def normalised(box, frame_size) -> tuple[float, float, float, float]:
    """(x, y, w, h) pixels as (left, top, right, bottom), each 0..1 of the frame."""
    x, y, w, h = box
    width, height = frame_size

    def unit(v):
        return min(max(v, 0.0), 1.0)

    return unit(x / width), unit(y / height), unit((x + w) / width), unit((y + h) / height)


class CameraComponent:
    """The camera component's state and messages. ``mav`` is a pymavlink encoder whose source is
    the camera component; ``send(fn)`` hands a message to the link (the output's error handling)."""

    def __init__(self, mav, send, *, clock=time.monotonic) -> None:
        self.mav = mav
        self._send = send
        self._clock = clock
        self._started = clock()
        self._last_heartbeat = -1e9
        self.interval_s: float | None = DEFAULT_STATUS_INTERVAL_S   # None: the stream is off
        self._next_status = None     # when the next streamed status is due
        self.status = STATUS_IDLE
        self.mode = MODE_RECTANGLE   # the kind of the last target a ground station asked for
        self._box = None             # normalised (left, top, right, bottom) of the last tracked frame
        self.frame_size = (0, 0)
        self._idle_pending = False   # tracking stopped: one IDLE status still to send

    # -- the state the loop gives ---------------------------------------------------------------
    def requested(self, kind: str) -> None:
        """A ground station asked to track a ``kind`` ("rectangle" or "point") target."""
        self.mode = MODE_POINT if kind == "point" else MODE_RECTANGLE

    def tracked(self, state: str, box, frame_size) -> None:
        """A frame's result: TRACKING (ACTIVE, with its box) or LOST (ERROR)."""
        self.frame_size = tuple(frame_size)
        if state == "TRACKING" and box is not None:
            self.status, self._box = STATUS_ACTIVE, normalised(box, frame_size)
        else:
            self.status, self._box = STATUS_ERROR, None
        self._idle_pending = False

    def holding(self, state: str) -> None:
        """No command this step (idle, the frame a target was picked on, no frame, or dry run)."""
        if state == "IDLE":
            if self.status != STATUS_IDLE:
                self._idle_pending = True
            self.status, self._box = STATUS_IDLE, None
        elif state == "LOST":
            self.status, self._box = STATUS_ERROR, None

    # -- sending --------------------------------------------------------------------------------
    def step(self) -> None:
        """Once per loop step: the 1 Hz HEARTBEAT, and the tracking status when due."""
        now = self._clock()
        if now - self._last_heartbeat >= 1.0:
            from pymavlink.dialects.v20 import common as m

            if self._send(lambda: self.mav.heartbeat_send(m.MAV_TYPE_CAMERA, m.MAV_AUTOPILOT_INVALID, 0, 0,
                                                          m.MAV_STATE_ACTIVE)):
                self._last_heartbeat = now
        if self._idle_pending:
            if self.send_status():
                self._idle_pending = False
            return
        if self.status == STATUS_IDLE or self.interval_s is None:
            self._next_status = None
            return
        if self._next_status is None or now >= self._next_status - 1e-9:
            if self.send_status():
                # Due times step by the interval, not from when a step came: at any frame rate above
                # the asked rate the stream keeps that rate on average (a step late is not lost).
                late = self._next_status is None or now - self._next_status >= self.interval_s
                self._next_status = (now if late else self._next_status) + self.interval_s

    def send_status(self) -> bool:
        point = rect = (NAN,) * 4
        if self._box is not None:
            left, top, right, bottom = self._box
            if self.mode == MODE_POINT:
                point = ((left + right) / 2, (top + bottom) / 2, (right - left) / 2, NAN)
            else:
                rect = self._box
        mode = MODE_NONE if self.status == STATUS_IDLE else self.mode
        data = TARGET_DATA_IN_STATUS if self._box is not None else TARGET_DATA_NONE
        return self._send(lambda: self.mav.camera_tracking_image_status_send(
            self.status, mode, data, point[0], point[1], point[2], *rect))

    def send_information(self) -> bool:
        width, height = self.frame_size
        return self._send(lambda: self.mav.camera_information_send(
            self._boot_ms(), _name("edge-track"), _name("edge-track tracker"), firmware_version(),
            NAN, NAN, NAN, min(width, 65535), min(height, 65535), 0, TRACKING_FLAGS, 0, b""))

    def _boot_ms(self) -> int:
        return int((self._clock() - self._started) * 1000) & 0xFFFFFFFF

    # -- commands -------------------------------------------------------------------------------
    def command(self, msg) -> tuple[int, object]:
        """A camera-protocol COMMAND_LONG: (MAV_RESULT, what to send after the ACK or None)."""
        if msg.command == MAV_CMD_REQUEST_CAMERA_INFORMATION:
            return ACCEPTED, self.send_information
        if msg.command == MAV_CMD_REQUEST_MESSAGE:
            wanted = msg.param1
            if wanted == MSG_CAMERA_INFORMATION:
                return ACCEPTED, self.send_information
            if wanted == MSG_CAMERA_TRACKING_IMAGE_STATUS:
                return ACCEPTED, self.send_status
            return UNSUPPORTED, None   # GIMBAL_MANAGER_INFORMATION included: the autopilot manages the gimbal
        if msg.command == MAV_CMD_SET_MESSAGE_INTERVAL:
            if msg.param1 != MSG_CAMERA_TRACKING_IMAGE_STATUS:
                return UNSUPPORTED, None
            interval_us = msg.param2
            if not math.isfinite(interval_us) or (interval_us < 0 and interval_us != -1):
                return DENIED, None
            self._next_status = None   # the new rate starts now
            if interval_us == -1:
                self.interval_s = None
            elif interval_us == 0:
                self.interval_s = DEFAULT_STATUS_INTERVAL_S
            else:
                self.interval_s = interval_us / 1e6
            return ACCEPTED, None
        return UNSUPPORTED, None
