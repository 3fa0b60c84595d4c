"""Every bundled tracker kind is an ``edge.trackers.contract.Tracker``, and what it declares it does:
a tracker that declares ``widen_search`` shows the network another search crop when its search is
widened; one that declares ``template_update`` shows it another template while tracking, and one
that does not keeps the init frame's template for the whole run."""

import os

import numpy as np
import pytest

from conftest import make_clip_frames, shared_path
from edge.build import open_tracker_at
from edge.evaluation.peers import OpenCVPeer
from edge.trackers.catalog import DATA
from edge.trackers.contract import Capabilities, Tracker, TrackerInfo, WidenableTracker
from edge.trackers.lost_search import LostSearch
from edge.trackers.state import TrackResult, TrackState
from edge.trackers.vittrack import open_vittrack


class Recording:
    """The tracker's network with every call's array arguments kept, in order."""

    def __init__(self, engine):
        self._engine = engine
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self._engine, name)
        if not callable(attr):
            return attr

        def recorded(*args):
            self.calls.append((name, [np.array(a) if isinstance(a, np.ndarray) else a for a in args]))
            return attr(*args)

        return recorded


# kind -> (open it, the search input of a call or None, the template input of a call or None)
KINDS = {
    "mixformer": (lambda: open_tracker_at(os.path.join(DATA, "model", "edge-track-default.onnx"), threads=1),
                  lambda name, args: args[0] if name == "run" else None,
                  lambda name, args: args[1] if name == "set_templates" else None),
    "nanotrack": (lambda: open_tracker_at(os.path.join(DATA, "nanotrack", "v3"), threads=1),
                  lambda name, args: args[0] if name == "features" and args[0].shape[-1] == 255 else None,
                  lambda name, args: args[0] if name == "head" else None),
    "vittrack": (lambda: open_vittrack(shared_path("models", "vittrack", "vitTracker.onnx"), threads=1),
                 lambda name, args: args[1] if name == "run" else None,
                 lambda name, args: args[0] if name == "run" else None),
}

FRAMES, BOXES = make_clip_frames(n=8, size=(320, 240), box=(140, 100, 40, 36), step=(2, 1))


def recorded(kind):
    opened, search_of, template_of = KINDS[kind]
    tracker = opened()
    tracker.engine = Recording(tracker.engine)
    return tracker, search_of, template_of


def inputs(calls, pick):
    return [x for name, args in calls if (x := pick(name, args)) is not None]


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


def test_each_bundled_kind_is_a_tracker_with_declared_capabilities(kind):
    tracker = KINDS[kind][0]()
    assert isinstance(tracker, Tracker)
    assert isinstance(type(tracker).capabilities, Capabilities)   # declared on the class, not per object
    info = tracker.info
    assert isinstance(info, TrackerInfo) and info.label and info.model and info.engine.startswith("onnxruntime")
    assert isinstance(tracker, WidenableTracker) == tracker.capabilities.widen_search
    result = tracker.init(FRAMES[0], BOXES[0])
    assert isinstance(result, TrackResult) and result.state is TrackState.TRACKING
    assert tracker.update(FRAMES[1]).state in (TrackState.TRACKING, TrackState.LOST)
    assert tracker.box is not None


def test_search_widening_changes_the_crop_where_declared(kind):
    tracker, search_of, _ = recorded(kind)
    assert tracker.capabilities.widen_search

    def searches(factor):
        tracker.engine.calls.clear()
        tracker.init(FRAMES[0], BOXES[0])
        tracker.set_search_factor(factor)
        for frame in FRAMES[1:3]:
            tracker.update(frame)
        return inputs(tracker.engine.calls, search_of)

    base = tracker.base_search_factor
    plain, again, widened = searches(base), searches(base), searches(2 * base)
    assert len(plain) == len(widened) == 2
    assert all(np.array_equal(a, b) for a, b in zip(plain, again))   # the same search, the same crops
    assert not all(np.array_equal(a, b) for a, b in zip(plain, widened))
    assert tracker.search_factor == 2 * base


def test_the_template_changes_while_tracking_only_where_declared(kind):
    tracker, _, template_of = recorded(kind)
    if kind == "mixformer":
        # Every frame's crop is a candidate: the schedule replaces the online template each frame.
        tracker.meta = tracker.meta.replace(update_interval=1, update_score_threshold=0.0)
    tracker.init(FRAMES[0], BOXES[0])
    for frame in FRAMES[1:6]:
        tracker.update(frame)
    templates = inputs(tracker.engine.calls, template_of)
    assert len(templates) >= 2
    changed = any(not np.array_equal(templates[0], t) for t in templates[1:])
    assert changed == tracker.capabilities.template_update


def test_a_tracker_that_declares_no_widening_is_never_asked_to_widen():
    peer = OpenCVPeer("kcf", lambda: None)
    assert not peer.capabilities.widen_search
    assert isinstance(peer, Tracker) and not isinstance(peer, WidenableTracker)

    class Lost:
        capabilities = Capabilities()
        info = TrackerInfo("lost", "lost", "none")
        box = None

        def init(self, frame, box):
            return TrackResult(tuple(box), 1.0, TrackState.TRACKING, 0)

        def update(self, frame):
            return TrackResult((0, 0, 1, 1), 0.0, TrackState.LOST, 1)

        def set_search_factor(self, factor):   # undeclared: must never be called
            raise AssertionError("widened a tracker that declares no widening")

    step = LostSearch(Lost())
    step.init(None, (0, 0, 1, 1))
    assert all(step.update(None).state is TrackState.LOST for _ in range(5))
    assert step.info.label == "lost" and step.capabilities == Capabilities()
