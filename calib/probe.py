"""What the gimbal, latency and PID steps need from a pan-tilt head with a camera: command a rate,
wait while tracking a still target, read where the target is (in camera angles).

``SimProbe`` drives ``edge-track sim``'s virtual head; ``DeviceProbe`` drives the configured
outputs and camera. The steps never know which one they have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.control.camera_model import CameraModel
from edge.control.command import GimbalCommand
from edge.errors import EdgeTrackError
from edge.outputs.base import ControlUpdate
from edge.trackers.state import TrackState


@dataclass
class Sample:
    t: float              # capture time, s (the probe's clock)
    yaw_deg: float        # target angles in the camera frame
    pitch_deg: float
    tracked: bool


def _no_check() -> None:
    pass


class Probe:
    camera: CameraModel
    clock: object
    check = staticmethod(_no_check)   # StopSignals.check: raises Stopped once a stop signal came

    def command(self, yaw_rate_dps: float, pitch_rate_dps: float) -> float:
        """Send a rate command; returns the send time on the probe's clock."""
        raise NotImplementedError

    def next_sample(self) -> Sample:
        """Track one more frame."""
        raise NotImplementedError

    def stop(self) -> float:
        return self.command(0.0, 0.0)

    def run_for(self, seconds: float) -> list[Sample]:
        end = self.clock() + seconds
        samples = []
        while self.clock() < end:
            samples.append(self.next_sample())
        return samples

    def target(self, settle_frames: int = 5) -> Sample:
        """The still target's angles, averaged over a few frames."""
        samples = [self.next_sample() for _ in range(settle_frames)]
        tracked = [s for s in samples if s.tracked]
        if not tracked:
            raise EdgeTrackError("the target is not tracked: put a still, textured target in view and pick it")
        return Sample(tracked[-1].t, sum(s.yaw_deg for s in tracked) / len(tracked),
                      sum(s.pitch_deg for s in tracked) / len(tracked), True)


class SimProbe(Probe):
    def __init__(self, world, tracker, check=_no_check) -> None:
        self.check = check
        self.world = world
        self.camera = world.camera
        self.clock = lambda: world.t
        self.tracker = tracker
        self.tracker.init(world.render(), world.truth_box())

    def command(self, yaw_rate_dps: float, pitch_rate_dps: float) -> float:
        self.check()
        self.world.gimbal.command(self.world.t, yaw_rate_dps, pitch_rate_dps)
        return self.world.t

    def next_sample(self) -> Sample:
        self.check()
        self.world.step()
        t = self.world.t
        result = self.tracker.update(self.world.render())
        x, y, w, h = result.box
        yaw, pitch = self.camera.angles_deg(x + w / 2, y + h / 2)
        return Sample(t, yaw, pitch, result.state is TrackState.TRACKING)


class DeviceProbe(Probe):
    """Real hardware: the configured outputs and camera, the loop's own tracker."""

    def __init__(self, outputs, grabber, tracker, camera: CameraModel, init_box, clock=time.monotonic,
                 check=_no_check) -> None:
        self.check = check
        self.outputs, self.grabber, self.tracker, self.camera, self.clock = outputs, grabber, tracker, camera, clock
        frame = self._frame()
        self.tracker.init(frame.image, init_box)
        self._seq = 0

    def _frame(self):
        frame = self.grabber.get(timeout=2.0)
        if frame is None:
            raise EdgeTrackError("no frames from the camera")
        return frame

    def command(self, yaw_rate_dps: float, pitch_rate_dps: float) -> float:
        # Before anything is sent: after a stop signal no new motion leaves (the outputs' close stops the head).
        self.check()
        cmd = GimbalCommand(yaw_rate_dps, pitch_rate_dps, bool(yaw_rate_dps or pitch_rate_dps))
        update = ControlUpdate(seq=self._seq, t_ms=int(self.clock() * 1000), state="TRACKING", box=None, score=1.0,
                               frame_size=(self.camera.width, self.camera.height), command=cmd)
        self._seq += 1
        for out in self.outputs:
            out.send(update)
        return self.clock()

    def next_sample(self) -> Sample:
        self.check()
        frame = self._frame()
        result = self.tracker.update(frame.image)
        x, y, w, h = result.box
        yaw, pitch = self.camera.angles_deg(x + w / 2, y + h / 2)
        return Sample(frame.t_capture_ns / 1e9, yaw, pitch, result.state is TrackState.TRACKING)
