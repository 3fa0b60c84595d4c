"""What every tracker answers per frame, and the one vocabulary of its state (standard library only:
the config schema and the loop read it without loading OpenCV or a network)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TrackState(str, enum.Enum):
    """The one state vocabulary: a tracker answers TRACKING or LOST; the loop is IDLE before a target
    is picked and after a stop. Each reads as its name in text (log lines, the wire, JSON)."""

    IDLE = "IDLE"
    TRACKING = "TRACKING"
    LOST = "LOST"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


@dataclass(frozen=True)
class TrackResult:
    """One frame's answer.

    box: (x, y, w, h) frame pixels; always finite. While the network gives non-finite output the
        box stays at the last valid estimate and ``valid`` is False.
    score: the tracker's confidence that it holds the target, in [0, 1] (0 when the output was
        non-finite); LOST follows from it by the tracker's own rule.
    state: TRACKING or LOST.
    frame_id: frames since init (init frame = 0).
    """

    box: tuple[float, float, float, float]
    score: float
    state: TrackState
    frame_id: int
    valid: bool = True


class LostStreak:
    """The LOST rule every tracker kind shares: LOST once ``frames`` scores in a row were below
    ``threshold``, and at once for an output that cannot be used (non-finite), which also counts as
    a full streak so that the next good-but-low frame does not flip back to TRACKING. The rule's
    numbers are the caller's (they may change between frames: a model's metadata, a config)."""

    def __init__(self) -> None:
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def step(self, score: float, threshold: float, frames: int) -> TrackState:
        self.count = self.count + 1 if score < threshold else 0
        return TrackState.LOST if self.count >= frames else TrackState.TRACKING

    def unusable(self, frames: int) -> TrackState:
        self.count = max(self.count, frames)
        return TrackState.LOST
