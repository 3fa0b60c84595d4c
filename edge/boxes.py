"""Parsing a target box typed by a person: 'x,y,w,h' in pixels."""

from __future__ import annotations

import math

from edge.errors import ConfigError


def read_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> (x, y, w, h) floats, all finite, w and h > 0; ValueError saying what is wrong."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise ValueError(f"must be x,y,w,h with w and h > 0 (pixels), got {text!r}")
    return values  # type: ignore[return-value]


def parse_box(text: str, option: str = "--init") -> tuple[float, float, float, float]:
    """``read_box`` for a user's input: ConfigError naming ``option`` (``--init``, ``tracking.init``)."""
    try:
        return read_box(text)
    except ValueError as exc:
        raise ConfigError(f"{option} {exc}") from None
