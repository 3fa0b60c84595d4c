"""What every tracker the loop, ``track``, ``eval``, ``trax`` and the simulator run must be: the
``Tracker`` protocol, with its capabilities declared, never probed for.

A tracker declares ``capabilities`` as a class attribute; what it declares it must do (a test holds
each bundled kind to it), and what it does not declare nobody asks of it. ``edge.trackers.lost_search``
widens the search of a tracker that declares ``widen_search``, and of no other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from edge.errors import ConfigError
from edge.trackers.state import TrackResult

if TYPE_CHECKING:   # the config reads the LOST search's settings beside this without numpy
    import numpy as np


@dataclass(frozen=True)
class Capabilities:
    """What a tracker can do beyond init and update.

    widen_search: its search region can be changed between frames (``search_factor``,
        ``base_search_factor``, ``set_search_factor``: ``WidenableTracker``).
    template_update: it replaces its template while tracking (MixFormerV2's online template);
        without it, the template is the init frame's for the whole run.
    """

    widen_search: bool = False
    template_update: bool = False


@dataclass(frozen=True)
class TrackerInfo:
    """What the runtime's messages and the web console say about a tracker."""

    label: str        # "MixFormerV2-s", "NanoTrack V3"
    model: str        # the preset: "s", "nanotrack-v3", "vittrack"
    engine: str       # what runs the network: "onnxruntime", "tflite", "tensorrt"
    precision: str = "fp32"


@runtime_checkable
class Tracker(Protocol):
    """One target at a time: ``init`` on a box, then ``update`` per frame. Frames are (H, W, 3)
    uint8 arrays; boxes (x, y, w, h) pixels."""

    capabilities: ClassVar[Capabilities]

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult: ...

    def update(self, frame: np.ndarray) -> TrackResult: ...

    @property
    def box(self) -> tuple[float, float, float, float] | None: ...

    @property
    def info(self) -> TrackerInfo: ...


@runtime_checkable
class WidenableTracker(Tracker, Protocol):
    """A tracker that declares ``widen_search``: its search region, as a factor of its own measure
    of the target's size, can change between frames."""

    @property
    def search_factor(self) -> float: ...

    @property
    def base_search_factor(self) -> float:
        """Its own search (the model's or the authors'), whatever it holds now."""
        ...

    def set_search_factor(self, factor: float) -> None: ...


def checked_search_factor(factor: float) -> float:
    """``factor`` as a float; ConfigError unless it is a positive finite number."""
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"search factor must be a positive number, got {factor!r}")
    return float(factor)
