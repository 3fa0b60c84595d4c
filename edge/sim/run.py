"""Run the real ``TrackingLoop`` against the simulated pan-tilt camera and score the result.

Reported: centring error (angle between target and optical axis; mean and p95 after the first
second), time to re-acquire after each occlusion (first frame back in TRACKING with the error under
``reacquire_deg``), and command smoothness (mean absolute change of the commanded rate per frame).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from edge.camera.base import Frame
from edge.config import DeviceConfig
from edge.control.command import GimbalCommand
from edge.control.integrator import RateIntegrator
from edge.errors import ConfigError
from edge.runtime.loop import TrackingLoop
from edge.sim.world import SimConfig, World
from edge.target import TargetRequest
from edge.trackers.contract import Capabilities, TrackerInfo
from edge.trackers.state import TrackResult, TrackState


class SimClock:
    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self) -> float:
        return self.world.t


class SimGrabber:
    """Frame source of the loop: renders the view, then advances virtual time by one frame."""

    def __init__(self, world: World, seconds: float) -> None:
        self.world = world
        self.frames_left = int(round(seconds * world.cfg.fps))
        self.finished = False
        self.dropped = 0
        self._index = 0

    def get(self, timeout: float):
        if self.frames_left <= 0:
            self.finished = True
            return None
        image = self.world.render()
        frame = Frame(image=image, t_capture_ns=int(self.world.t * 1e9), index=self._index)
        self._index += 1
        self.frames_left -= 1
        return frame

    def stop(self) -> None:
        self.finished = True


class SimGimbalOutput:
    """The loop's output: commands go to the simulated head (after its delay).

    mode "rate": speed commands, as SimpleBGC speed mode, MAVLink rates, Pelco-D. mode "angle":
    the rates are integrated into position set-points, as the servo outputs do.
    """

    name = "sim-gimbal"

    def __init__(self, world: World, mode: str = "rate") -> None:
        self.world = world
        self.mode = mode
        self.commands: list[GimbalCommand] = []
        self.stops = 0
        self.angles = RateIntegrator((-180, 180), (-80, 80), clock=lambda: world.t) if mode == "angle" else None

    def send(self, update) -> None:
        cmd = update.command
        self.commands.append(cmd)
        if self.angles is not None:
            self.world.gimbal.command_angle(self.world.t, *self.angles.update(cmd))
        else:
            self.world.gimbal.command(self.world.t, cmd.yaw_rate_dps if cmd.active else 0.0,
                                      cmd.pitch_rate_dps if cmd.active else 0.0)
        self.world.step()

    def heartbeat(self, now_ms: int, state: str) -> None:
        self.world.step()

    def stop(self) -> None:
        self.stops += 1
        if self.angles is not None:
            self.angles.hold()
            self.world.gimbal.command_angle(self.world.t, self.angles.pan_deg, self.angles.tilt_deg)
        else:
            self.world.gimbal.command(self.world.t, 0.0, 0.0)

    def close(self) -> None:
        self.stop()


class OracleTracker:
    """Returns the simulator's true box: tests the control loop without the vision part. It takes a
    search factor (so the loop's LOST search runs as with a real tracker) and ignores it."""

    capabilities = Capabilities(widen_search=True)
    info = TrackerInfo("oracle", "oracle", "simulator")

    def __init__(self, world: World, search_factor: float = 4.0) -> None:
        self.world = world
        self.search_factor = self.base_search_factor = search_factor
        self._frame = 0
        self._box = None

    def set_search_factor(self, factor: float) -> None:
        self.search_factor = factor

    @property
    def box(self):
        return self._box

    def init(self, frame, box) -> TrackResult:
        self._frame = 0
        self._box = tuple(box)
        return TrackResult(self._box, 1.0, TrackState.TRACKING, 0)

    def update(self, frame) -> TrackResult:
        self._frame += 1
        box = self.world.truth_box()
        if box is None:
            return TrackResult(self._box, 0.0, TrackState.LOST, self._frame)
        self._box = box
        return TrackResult(box, 1.0, TrackState.TRACKING, self._frame)


@dataclass
class SimReport:
    frames: int
    mean_error_deg: float
    p95_error_deg: float
    max_error_deg: float
    reacquire_s: list
    smoothness_dps: float
    lost_frames: int
    max_rate_dps: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def run_sim(sim: SimConfig, device: DeviceConfig, tracker_factory, seconds: float = 10.0,
            reacquire_deg: float = 3.0) -> SimReport:
    """tracker_factory(world) -> a tracker with init/update/search_factor/set_search_factor."""
    if int(round(seconds * sim.fps)) < 1:
        raise ConfigError(f"a simulation of {seconds:g} s has no frame at {sim.fps:g} fps")
    world = World(sim)
    device.camera.fps = sim.fps
    device.camera.hfov_deg, device.camera.vfov_deg = sim.hfov_deg, sim.vfov_deg
    tracker = tracker_factory(world)
    output = SimGimbalOutput(world, mode=device.control.mode)
    grabber = SimGrabber(world, seconds)
    first = world.truth_box()
    loop = TrackingLoop(tracker=tracker, grabber=grabber, outputs=[output], config=device,
                        clock=SimClock(world), initial_target=TargetRequest(box=first, source="sim"))
    errors, states, times = [], [], []
    stop = threading.Event()
    try:
        while loop.step():
            errors.append(world.error_deg())
            states.append(loop.state)
            times.append(world.t)
    finally:
        loop.shutdown()
    errors = np.asarray(errors)
    settled = errors[times.index(next(t for t in times if t >= 1.0)):] if any(t >= 1.0 for t in times) else errors
    reacquire = []
    for start, end in sim.occlusions:
        back = next((t for t, e, s in zip(times, errors, states)
                     if t >= end and s == "TRACKING" and e < reacquire_deg), None)
        reacquire.append(None if back is None else round(back - end, 3))
    rates = (np.array([[c.yaw_rate_dps, c.pitch_rate_dps] for c in output.commands]) if output.commands
             else np.zeros((1, 2)))
    smooth = float(np.mean(np.abs(np.diff(rates, axis=0)))) if len(rates) > 1 else 0.0
    del stop
    return SimReport(frames=len(errors), mean_error_deg=float(settled.mean()),
                     p95_error_deg=float(np.percentile(settled, 95)), max_error_deg=float(settled.max()),
                     reacquire_s=reacquire, smoothness_dps=smooth,
                     lost_frames=loop.stats.lost_frames, max_rate_dps=float(np.abs(rates).max()))
