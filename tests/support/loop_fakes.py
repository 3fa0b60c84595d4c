"""Stand-ins for the loop's parts, on the loop's own seams: grabbers that hand out set frames,
trackers that report a script, an output that records what it was sent."""

import time

import numpy as np

from conftest import make_clip_frames
from edge.camera.base import Frame
from edge.outputs.base import LogOutput
from edge.trackers.contract import Capabilities, TrackerInfo
from edge.trackers.state import TrackResult, TrackState


class FakeTracker:
    """What the stand-in trackers declare (tracker contract): a search the loop's LOST step may widen."""

    capabilities = Capabilities(widen_search=True)
    info = TrackerInfo("fake", "fake", "none")
    base_search_factor = 4.0
    search_factor = 4.0
    box = None

    def set_search_factor(self, f):
        self.search_factor = f


class FrameList:
    def __init__(self, n):
        import numpy as np

        self.frames, self.finished, self.dropped = [np.zeros((480, 640, 3), np.uint8)] * n, False, 0

    def get(self, timeout):
        from edge.camera.base import Frame

        if not self.frames:
            self.finished = True
            return None
        return Frame(self.frames.pop(), time.monotonic_ns(), 0)

    def stop(self):
        pass


class FixedTracker(FakeTracker):
    """A tracker that always sees the target right of centre: any sent command would move the head."""

    def init(self, frame, box):
        pass

    def update(self, frame):
        return TrackResult((500, 200, 40, 40), 0.9, TrackState.TRACKING, 0)


def frame640():
    return np.zeros((480, 640, 3), np.uint8)


class QueueGrabber:
    """Hands out ``frames`` in order (None: a gap, no frame within the timeout), then finishes.
    With a ``clock`` (support.clock.FakeClock) a gap moves it by the timeout and a frame by
    ``frame_s`` instead of the test waiting."""

    def __init__(self, frames, clock=None, frame_s=1 / 30):
        self.frames = list(frames)
        self.finished = False
        self.dropped = 0
        self.clock, self.frame_s = clock, frame_s

    def get(self, timeout):
        if not self.frames:
            self.finished = True
            return None
        item = self.frames.pop(0)
        if item is None:           # a gap: no frame within the timeout
            if self.clock is None:
                time.sleep(timeout)
            else:
                self.clock.advance(timeout)
            return None
        if self.clock is not None:
            self.clock.advance(self.frame_s)
        return Frame(item, time.monotonic_ns(), 0)

    def stop(self):
        pass


class ScriptedTracker(FakeTracker):
    """Returns scripted (box, score, state) per update; records init calls."""

    def __init__(self, script):
        self.script = list(script)
        self.factors = []
        self.inits = []

    def init(self, frame, box):
        self.inits.append(tuple(box))
        return TrackResult(tuple(box), 1.0, TrackState.TRACKING, 0)

    def update(self, frame):
        box, score, state = self.script.pop(0) if self.script else ((300, 220, 40, 40), 0.9, TrackState.TRACKING)
        self.factors.append(self.search_factor)
        return TrackResult(box, score, state, 0)


class ListSource:
    def __init__(self, frames, fail_after=None, period_s=0.0):
        self.frames, self.fail_after, self.period_s = frames, fail_after, period_s

    def __iter__(self):
        for i, f in enumerate(self.frames):
            if self.fail_after is not None and i >= self.fail_after:
                raise OSError("device unplugged")
            if self.period_s:
                time.sleep(self.period_s)     # a camera delivers at its frame rate
            yield Frame(f, time.monotonic_ns(), i)

    def close(self):
        pass


class RecordingOutput(LogOutput):
    name = "recording"

    def __init__(self):
        super().__init__()
        self.updates = []

    def send(self, update):
        super().send(update)
        self.updates.append(update)


class FollowingTracker(FakeTracker):
    """Reports TRACKING on the box it was given (the console's job is getting that box to it)."""

    def __init__(self):
        self.inits = []
        self.box = None

    def init(self, frame, box):
        self.inits.append(tuple(round(v, 1) for v in box))
        self.box = tuple(box)
        return TrackResult(self.box, 1.0, TrackState.TRACKING, 0)

    def update(self, frame):
        return TrackResult(self.box, 0.9, TrackState.TRACKING, 0)


class LiveGrabber:
    """Generated frames at ~30 fps, forever: a camera stand-in."""

    def __init__(self):
        self.frames, _ = make_clip_frames(30, size=(320, 240))
        self.i = 0
        self.finished = False
        self.dropped = 0

    def get(self, timeout):
        time.sleep(1 / 30)
        self.i += 1
        return Frame(self.frames[self.i % len(self.frames)], time.monotonic_ns(), self.i)

    def stop(self):
        self.finished = True
