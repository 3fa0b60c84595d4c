"""Long start-up waits say what they wait for every 5 s (the camera; the model loading) and still end on a stop."""

from __future__ import annotations

import pytest

from edge.runtime.service import PROGRESS_EVERY_S, wait_for_first_frame


class SlowCamera:
    """A grabber whose first frame comes ``after_s`` into the wait, on a clock it advances itself."""

    def __init__(self, after_s: float | None) -> None:
        self.now, self.after_s = 100.0, after_s

    def clock(self) -> float:
        return self.now

    def get(self, timeout: float):
        self.now += timeout
        return "frame" if self.after_s is not None and self.now - 100.0 >= self.after_s else None


def test_a_long_camera_wait_reports_every_five_seconds_until_the_frame_comes():
    camera, reports = SlowCamera(after_s=12.0), []
    first = wait_for_first_frame(camera, 30.0, lambda: None, progress=reports.append, clock=camera.clock)
    assert first == "frame"
    assert [round(r) for r in reports] == [5, 10]
    assert PROGRESS_EVERY_S == 5.0


def test_a_short_wait_reports_nothing_and_a_timeout_gives_none():
    camera, reports = SlowCamera(after_s=3.0), []
    assert wait_for_first_frame(camera, 30.0, lambda: None, progress=reports.append, clock=camera.clock) == "frame"
    assert reports == []
    never = SlowCamera(after_s=None)
    assert wait_for_first_frame(never, 11.0, lambda: None, progress=reports.append, clock=never.clock) is None
    assert never.now - 100.0 == pytest.approx(11.0)        # None only once the whole timeout has passed
    assert [round(r) for r in reports] == [5, 10]


def test_a_stop_during_the_wait_ends_it():
    class Stop(Exception):
        pass

    camera, calls = SlowCamera(after_s=None), []

    def checkpoint():
        calls.append(camera.now)
        if camera.now - 100.0 >= 7.0:
            raise Stop

    with pytest.raises(Stop):
        wait_for_first_frame(camera, 30.0, checkpoint, progress=lambda s: None, clock=camera.clock)
    assert all(b - a <= 0.1 + 1e-9 for a, b in zip(calls, calls[1:]))   # checked at least every 0.1 s


def test_a_long_call_reports_while_it_runs_and_stops_reporting_when_it_ends():
    import threading

    from edge.io.progress import reporting_while

    reports, three = [], threading.Event()

    def report(what, waited_s):
        reports.append((what, waited_s))
        if len(reports) == 3:
            three.set()

    with reporting_while("loading the model m.onnx", report, every_s=0.01):
        assert three.wait(30)                  # the block blocks; the beat goes on beside it
    count = len(reports)
    assert reports[:3] == [("loading the model m.onnx", pytest.approx(0.01 * k)) for k in (1, 2, 3)]
    threading.Event().wait(0.05)
    assert len(reports) == count               # nothing after the block ended
    with reporting_while("quick", report, every_s=60):
        pass
    assert len(reports) == count               # a short step says nothing
