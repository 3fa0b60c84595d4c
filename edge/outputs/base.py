"""The output interface and the update every output receives."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from edge.control.command import GimbalCommand


@dataclass(frozen=True)
class ControlUpdate:
    seq: int
    t_ms: int                               # monotonic, ms
    state: str                              # IDLE, TRACKING, LOST
    box: tuple | None                       # (x, y, w, h) pixels, None when idle
    score: float
    frame_size: tuple[int, int]             # (width, height)
    command: GimbalCommand


@dataclass(frozen=True)
class TrackRequest:
    """A target request received by an output (a ground station, the serial link).

    kind: "rectangle" (normalised x1, y1, x2, y2), "point" (normalised x, y + radius),
    "pixels" (x, y, w, h) or "stop".
    """

    kind: str
    rect: tuple | None = None
    point: tuple | None = None
    radius: float = 0.0
    pixels: tuple | None = None

    def box_in(self, width: int, height: int, min_size_px: float = 16.0):
        """The request as an (x, y, w, h) pixel box in a width x height frame."""
        if self.kind == "pixels":
            return tuple(float(v) for v in self.pixels)
        if self.kind == "rectangle":
            x1, y1, x2, y2 = self.rect
            return (x1 * width, y1 * height, max((x2 - x1) * width, min_size_px),
                    max((y2 - y1) * height, min_size_px))
        if self.kind == "point":
            side = max(self.radius * 2 * width, min_size_px * 4)
            cx, cy = self.point[0] * width, self.point[1] * height
            return (cx - side / 2, cy - side / 2, side, side)
        return None


class Output(Protocol):
    """``send`` once per tracked frame; ``heartbeat`` instead whenever no command may go out (no
    frame, no target, or dry run): hold still but keep the link alive; ``stop`` holds/neutral and
    never raises; ``close`` stops first and is idempotent."""

    name: str

    def send(self, update: ControlUpdate) -> None: ...

    def heartbeat(self, now_ms: int, state: str) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class LogOutput:
    """Computes nothing, sends nothing: the dry-run output (the track log records the commands)."""

    name = "log"

    def __init__(self) -> None:
        self.sent = 0
        self.stops = 0

    def send(self, update: ControlUpdate) -> None:
        self.sent += 1

    def heartbeat(self, now_ms: int, state: str) -> None:
        pass

    def stop(self) -> None:
        self.stops += 1

    def close(self) -> None:
        self.stop()


log = logging.getLogger("edge.outputs")
