"""Parsing a target box typed by a person: 'x,y,w,h' in pixels."""

from __future__ import annotations

import math

from edge.errors import ConfigError


def parse_box(text: str, option: str = "--init") -> tuple[float, float, float, float]:
    """'x,y,w,h' -> (x, y, w, h) floats, with w and h positive and all finite.

    ``option`` names the setting in the error (``--init``, ``tracking.init``).
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise ConfigError(f"{option} must be x,y,w,h with w and h > 0 (pixels), got {text!r}")
    return values  # type: ignore[return-value]
