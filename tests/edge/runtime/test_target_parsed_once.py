"""The target text is parsed once, where it enters (the config's tracking.init in preflight, a
request made in code): the loop takes the parsed value as it is and reads no text."""

import threading

import pytest

import edge.target
from edge.config import load_config
from edge.errors import ConfigError
from edge.runtime.loop import TrackingLoop
from edge.target import CentreROI, TargetRequest, initial_request
from edge.trackers.state import TrackState
from support.loop_fakes import QueueGrabber, RecordingOutput, ScriptedTracker, frame640


def test_a_roi_request_holds_the_parsed_roi_and_a_bad_one_is_refused_when_made():
    assert TargetRequest(roi="center:40x30").roi == CentreROI("center:40x30", 40.0, 30.0)
    assert initial_request(" center:40x30 ").roi == CentreROI("center:40x30", 40.0, 30.0)
    with pytest.raises(ValueError, match="center:WxH"):
        TargetRequest(roi="center:40")
    with pytest.raises(ConfigError, match="init: ROI center:900x30 does not fit the 640x480 frame"):
        CentreROI.parse("center:900x30").box_in(640, 480)


def test_the_loop_starts_on_the_parsed_roi_without_reading_text_again(monkeypatch):
    initial = initial_request("center:40x40")

    def no_text(*args, **kwargs):
        raise AssertionError("the loop parsed target text again")

    for name in ("roi_size_from_text", "target_from_option", "box_from_option", "check_target"):
        monkeypatch.setattr(edge.target, name, no_text)
    tracker = ScriptedTracker([((300, 220, 40, 40), 0.9, TrackState.TRACKING)] * 2)
    out = RecordingOutput()
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 3), outputs=[out],
                        config=load_config({}), initial_target=initial)
    loop.run(threading.Event())
    assert tracker.inits == [(300.0, 220.0, 40.0, 40.0)]
    assert [u.state for u in out.updates] == ["TRACKING", "TRACKING"]
