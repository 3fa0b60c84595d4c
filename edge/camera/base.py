"""The frame-source interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class Frame:
    """image: (H, W, 3) uint8 RGB. t_capture_ns: monotonic capture time. index: 0-based."""

    image: np.ndarray
    t_capture_ns: int
    index: int


class FrameSource(Protocol):
    color_order: str  # always "RGB" for the sources in this package

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...
