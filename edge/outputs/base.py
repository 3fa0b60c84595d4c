"""The output interface, the update every output receives, and what every output's settings and
registry entry have (``OutputConfig``, ``OutputKind``)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from edge.control.command import GimbalCommand
from edge.io.libraries import Library
from edge.schema import checked, one_of

# An output's poll() reads at most this many times: a flood on a link must not hold the loop (what is
# left is read on the next poll).
MAX_READS_PER_POLL = 8


@dataclass(frozen=True)
class ControlUpdate:
    seq: int
    t_ms: int                               # monotonic, ms
    state: str                              # IDLE, TRACKING, LOST
    box: tuple | None                       # (x, y, w, h) pixels, None when idle
    score: float
    frame_size: tuple[int, int]             # (width, height)
    command: GimbalCommand


def _unit(value) -> bool:
    """A finite number in 0..1: the MAVLink camera protocol's normalised image coordinates."""
    return isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0


@dataclass(frozen=True)
class RemoteTarget:
    """A target as a remote sender (a ground station, the serial link) asked for it, in its own terms;
    the loop takes it as ``edge.target.TargetRequest(remote=...)``, the one request it acts on.

    kind: "rectangle" (normalised x1, y1, x2, y2), "point" (normalised x, y + radius, a share of
    the image width), "pixels" (x, y, w, h) or "stop".

    A normalised request is checked when it is made (ValueError, one line), so an output can answer
    its sender before the loop sees it; one that passes always gives, for any frame, a box the loop
    takes (``box_in``). Pixels depend on the frame: the loop checks them (``edge.target.fit_target``).
    """

    kind: str
    rect: tuple | None = None
    point: tuple | None = None
    radius: float = 0.0
    pixels: tuple | None = None

    def __post_init__(self) -> None:
        if self.kind == "rectangle":
            if not (self.rect is not None and len(self.rect) == 4 and all(_unit(v) for v in self.rect)
                    and self.rect[2] > self.rect[0] and self.rect[3] > self.rect[1]):
                raise ValueError(f"rectangle {self.rect!r}: expected x1 < x2, y1 < y2, each in 0..1")
        elif self.kind == "point":
            if not (self.point is not None and len(self.point) == 2 and all(_unit(v) for v in self.point)):
                raise ValueError(f"point {self.point!r}: expected x, y in 0..1")
            if not _unit(self.radius):
                raise ValueError(f"point radius {self.radius!r}: expected 0..1")

    def box_in(self, width: int, height: int, min_size_px: float = 16.0):
        """The request as an (x, y, w, h) pixel box in a width x height frame. A normalised one is
        grown to its minimum size about its centre, at most to the frame, and clipped to it."""
        if self.kind == "pixels":
            return tuple(float(v) for v in self.pixels)
        if self.kind == "rectangle":
            x1, y1, x2, y2 = self.rect
            w = max((x2 - x1) * width, min(min_size_px, width))
            h = max((y2 - y1) * height, min(min_size_px, height))
            return _clipped((x1 + x2) / 2 * width, (y1 + y2) / 2 * height, w, h, width, height)
        if self.kind == "point":
            side = min(max(self.radius * 2 * width, min_size_px * 4), width, height)
            return _clipped(self.point[0] * width, self.point[1] * height, side, side, width, height)
        return None


def _clipped(cx: float, cy: float, w: float, h: float, width: int, height: int):
    """The w x h box centred on (cx, cy), cut to the frame: a centre inside the frame and a box no
    larger than it leave at least half of each side inside."""
    x0, y0 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
    x1, y1 = min(cx + w / 2, float(width)), min(cy + h / 2, float(height))
    return (x0, y0, x1 - x0, y1 - y0)


class Output(Protocol):
    """``send`` once per tracked frame; ``heartbeat`` instead whenever no command may go out (no
    frame, no target, or dry run): hold still but keep the link alive; ``stop`` holds/neutral and
    never raises; ``close`` stops first and is idempotent.

    The last command given (a speed, a set-point, a stop, a re-centre) is the head's standing
    command: a write that failed does not count as delivered, and the standing command is written
    again on a later call (``heartbeat`` included) once the link is back."""

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


# -- settings and registry entries --------------------------------------------------------------

def _output_types():
    return list(OUTPUTS)


def output_type(name: str):
    """The ``type`` field of an output's settings: ``name`` by default, one of the registry's."""
    return checked(one_of(_output_types), default=name)


@dataclass
class OutputConfig:
    """One item of ``outputs:``. Its ``type`` picks the dataclass of the rest of its keys: the
    output's own, beside it in its module (``edge.outputs.OUTPUTS``)."""

    type: str = output_type("log")   # edge.outputs.OUTPUTS
    enabled: bool = True

    @classmethod
    def variants(cls) -> dict[str, type]:
        return {name: kind.config for name, kind in OUTPUTS.items()}


def required_port(check: Callable[[str], None]):
    """The ``port`` field of an output that talks: required while it is enabled, and it must pass
    ``check(port)`` (ValueError, one line: a ConfigError is one)."""
    def rule(value: str, section) -> None:
        if not section.enabled:
            return
        if not value:
            raise ValueError(f"required for output type {section.type}")
        check(value)
    return checked(rule, default="")


@dataclass(frozen=True)
class OutputKind:
    """One output type: its settings (``config``, the dataclass its YAML item is loaded into),
    ``open(settings, control section) -> Output``, the library it imports when it opens (None:
    nothing beyond edge-track), and ``check(settings)``, what else its opening needs that can be
    tried without moving anything (ConfigError, one line); preflight runs both before READY=1."""

    config: type
    open: Callable[[Any, Any], Output]
    needs: Library | None = None
    check: Callable[[Any], None] | None = None


# The table of output types: edge.outputs lists them in it (its one list), the settings' ``type``
# reads it here, so nothing in this module looks up at the package.
OUTPUTS: dict[str, OutputKind] = {}


@dataclass
class LogConfig(OutputConfig):
    """The dry run: no keys beyond ``type`` and ``enabled``."""


LOG = OutputKind(LogConfig, lambda cfg, control_cfg: LogOutput())
