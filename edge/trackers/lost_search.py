"""The per-frame step every consumer of a tracker runs: the device loop, ``track``, ``eval`` and the
simulator. A tracker's own update does the crop, the network, the state machine, the hold and the
template schedule; this adds what happens around it while the target is LOST: the search region
grows by ``widen_step`` each LOST frame, up to ``max_search_factor``, and goes back to the
tracker's own size when tracking resumes or a new target is picked. ``eval`` therefore scores what
a device does, widening included."""

from __future__ import annotations

from dataclasses import dataclass

from edge.trackers.contract import Capabilities, Tracker, TrackerInfo
from edge.trackers.state import TrackResult, TrackState


@dataclass(frozen=True)
class LostSearchSettings:
    widen_step: float = 1.15
    max_search_factor: float = 9.0


class LostSearch:
    """``tracker`` with the LOST search around it, itself a ``Tracker`` (the loop's messages, the web
    console and the bench read its ``info`` and ``box``). A tracker that does not declare
    ``widen_search`` (OpenCV's peers) passes through unchanged."""

    def __init__(self, tracker: Tracker, settings: LostSearchSettings = LostSearchSettings()) -> None:
        self.tracker = tracker
        self.settings = settings
        self.widens = tracker.capabilities.widen_search
        # The tracker's own search, not whatever it holds now: a tracker reused after a run that
        # ended LOST still holds a widened one.
        self.base_search_factor = tracker.base_search_factor if self.widens else None

    @property
    def capabilities(self) -> Capabilities:
        return self.tracker.capabilities

    @property
    def info(self) -> TrackerInfo:
        return self.tracker.info

    @property
    def box(self):
        return self.tracker.box

    def init(self, frame, box) -> TrackResult:
        self.reset()
        return self.tracker.init(frame, box)

    def reset(self) -> None:
        if self.widens:
            self.tracker.set_search_factor(self.base_search_factor)

    def update(self, frame) -> TrackResult:
        result = self.tracker.update(frame)
        if not self.widens:
            return result
        if result.state is TrackState.LOST:
            widened = min(self.tracker.search_factor * self.settings.widen_step, self.settings.max_search_factor)
            self.tracker.set_search_factor(max(widened, self.base_search_factor))
        elif self.tracker.search_factor != self.base_search_factor:
            self.reset()
        return result
