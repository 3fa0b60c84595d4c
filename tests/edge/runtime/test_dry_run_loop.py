"""Leaving and entering a dry run in the loop: the first live command ramps up from a stopped
head, and a dry run switched on from another thread always sends its stop."""

import threading

from edge.config import load_config
from edge.runtime.loop import TrackingLoop
from edge.target import TargetRequest
from edge.trackers.state import TrackState
from support.clock import FakeClock
from support.loop_fakes import QueueGrabber, RecordingOutput, ScriptedTracker, frame640

FAR_RIGHT = ((580, 220, 40, 40), 0.9, TrackState.TRACKING)   # well off centre: a large rate is wanted


def make_loop(out, frames=400, accel=100.0):
    cfg = load_config({"control": {"max_accel_dps2": accel}})
    clock = FakeClock(step=0.033)
    loop = TrackingLoop(tracker=ScriptedTracker([FAR_RIGHT] * frames), grabber=QueueGrabber([frame640()] * frames),
                        outputs=[out], config=cfg, clock=clock, initial_target=TargetRequest(box=(580, 220, 40, 40)))
    return loop, cfg


def test_leaving_a_dry_run_ramps_up_from_a_stopped_head():
    """During the dry run the controller kept computing as if the head had moved; the head was
    held. The first live command must be within one acceleration step of zero, not full rate."""
    out = RecordingOutput()
    loop, cfg = make_loop(out)
    for _ in range(3):
        loop.step()
    loop.set_dry_run(True)
    for _ in range(150):      # long enough for the computed rate to reach the rate limit
        loop.step()
    out.updates.clear()
    loop.set_dry_run(False)
    loop.step()
    loop.step()
    first = out.updates[0].command
    # A step is at most max_accel * dt (dt is the loop clock's 0.033 s, or the first frame's 1/fps).
    limit = cfg.control.max_accel_dps2 * max(0.033, 1.0 / cfg.camera.fps) + 1e-6
    assert first.active and 0 < abs(first.yaw_rate_dps) <= limit, first
    assert abs(out.updates[1].command.yaw_rate_dps) <= 2 * limit
    loop.shutdown()


class FlippedMidStep(TrackingLoop):
    """The web thread's set_dry_run(True) lands while the loop is inside its dry-run check: the
    first read of ``dry_run`` inside a step sees False, any later one True."""

    armed = False

    @property
    def dry_run(self):
        value = self.__dict__.get("_flag", False)
        if self.armed:
            self.__dict__["_flag"] = True
        return value

    @dry_run.setter
    def dry_run(self, value):
        self.__dict__["_flag"] = value


def test_a_dry_run_switched_on_mid_step_still_sends_its_stop():
    out = RecordingOutput()
    cfg = load_config({})
    loop = FlippedMidStep(tracker=ScriptedTracker([FAR_RIGHT] * 20), grabber=QueueGrabber([frame640()] * 20),
                          outputs=[out], config=cfg, clock=FakeClock(step=0.033),
                          initial_target=TargetRequest(box=(580, 220, 40, 40)))
    for _ in range(5):
        loop.step()
    stops = out.stops
    loop.armed = True
    for _ in range(5):
        loop.step()
    assert loop._dry                 # the dry run is on by now
    assert out.stops > stops         # and the outputs were told to hold when it began
    loop.shutdown()


def test_a_dry_run_set_from_another_thread_holds_the_outputs():
    out = RecordingOutput()
    loop, _ = make_loop(out, frames=50)
    for _ in range(5):
        loop.step()
    stops = out.stops
    t = threading.Thread(target=loop.set_dry_run, args=(True,))
    t.start()
    t.join()
    sent = len(out.updates)
    for _ in range(5):
        loop.step()
    assert out.stops == stops + 1 and len(out.updates) == sent
    loop.shutdown()
