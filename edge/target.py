"""What to track: a request to the tracking loop, and the text forms of a target ('x,y,w,h',
'center:WxH') a config, a command line or a web page gives, and the one rule (``fit_target``)
every route's box must pass before the tracker starts on it.

Each text form has two readers: ``*_from_text`` says what is wrong in a ValueError (a caller that
answers in its own words: a web request, ``config check``), ``*_from_option`` in a ConfigError that
names the option the text came from (``--init``, ``tracking.init``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.errors import ConfigError

ROI_PREFIX = "center:"


def xywh_from_text(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> (x, y, w, h) floats, all finite, w and h > 0; ValueError saying what is wrong."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise ValueError(f"must be x,y,w,h with w and h > 0 (pixels), got {text!r}")
    return values  # type: ignore[return-value]


def box_from_option(text: str, option: str = "--init") -> tuple[float, float, float, float]:
    """``xywh_from_text`` for a user's option: ConfigError naming ``option`` (``--init``, ``tracking.init``)."""
    try:
        return xywh_from_text(text)
    except ValueError as exc:
        raise ConfigError(f"{option} {exc}") from None


@dataclass(frozen=True)
class CentreROI:
    """'center:WxH', parsed: a w x h pixel box centred in whatever frame it meets."""

    text: str
    w: float
    h: float

    @classmethod
    def parse(cls, text: str) -> CentreROI:
        """ValueError saying what is wrong unless ``text`` is 'center:WxH', W and H > 0."""
        return cls(text.strip(), *roi_size_from_text(text))

    def box_in(self, width: int, height: int, option: str = "init") -> tuple[float, float, float, float]:
        """The box in a width x height frame; ConfigError naming ``option`` when it does not fit."""
        if not (self.w <= width and self.h <= height):
            raise ConfigError(f"{option}: ROI {self.text} does not fit the {width}x{height} frame")
        return ((width - self.w) / 2, (height - self.h) / 2, self.w, self.h)


@dataclass(frozen=True)
class TargetRequest:
    """Start tracking ``box`` (pixels, x, y, w, h), ``roi`` (a CentreROI; its text "center:WxH" is
    parsed here, once), or ``remote`` (an object with ``box_in(width, height)``, e.g. a ground
    station's normalised rectangle); with none of them: stop tracking."""

    box: tuple | None = None
    roi: CentreROI | None = None
    remote: object = None
    recenter: bool = False         # with no target: also move the head to neutral
    source: str = "api"
    queued_at: float | None = None  # loop clock when queued; None (the config's target) never expires

    def __post_init__(self) -> None:
        if isinstance(self.roi, str):
            object.__setattr__(self, "roi", CentreROI.parse(self.roi))

    @property
    def is_stop(self) -> bool:
        return self.box is None and self.roi is None and self.remote is None

    def box_in(self, width: int, height: int) -> tuple | None:
        """The requested box in a width x height frame, not yet fitted to it (``fit_target``);
        ConfigError for a ROI that does not fit, None for a stop."""
        if self.box is not None:
            return self.box
        target = self.remote if self.remote is not None else self.roi
        return target.box_in(width, height) if target is not None else None


def roi_size_from_text(text: str) -> tuple[float, float]:
    """'center:WxH' -> (W, H), both finite and > 0; ValueError saying what is wrong."""
    try:
        w, h = (float(v) for v in text.strip()[len(ROI_PREFIX):].lower().split("x"))
    except ValueError:
        w = h = math.nan
    if not (0 < w < math.inf and 0 < h < math.inf):
        raise ValueError(f"ROI must look like center:WxH (pixels, > 0), got {text!r}")
    return w, h


def check_target(text: str) -> None:
    """ValueError unless ``text`` is 'x,y,w,h' or 'center:WxH' (whatever the frame size)."""
    if text.strip().startswith(ROI_PREFIX):
        roi_size_from_text(text)
    else:
        xywh_from_text(text)


def target_from_option(text: str, width: int, height: int, option: str = "init") -> tuple[float, float, float, float]:
    """'x,y,w,h' or 'center:WxH' -> a pixel box (x, y, w, h) in a width x height frame;
    ConfigError naming ``option`` when it is neither or the ROI does not fit."""
    text = text.strip()
    if not text.startswith(ROI_PREFIX):
        return box_from_option(text, option)
    try:
        roi = CentreROI.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None
    return roi.box_in(width, height, option)


def initial_request(text: str) -> TargetRequest | None:
    """The request a config's ``tracking.init`` makes (checked at load): None when empty."""
    text = text.strip()
    if not text:
        return None
    if text.startswith(ROI_PREFIX):
        return TargetRequest(roi=CentreROI.parse(text), source="config")
    return TargetRequest(box=box_from_option(text, "tracking.init"), source="config")


# A target must have at least this share of its area inside the frame: a box partly outside is
# clipped, one that is mostly (or wholly) outside, e.g. 1e30 px wide, is refused.
MIN_INSIDE = 0.25
MIN_SIDE_PX = 2.0


def fit_target(box, width: int, height: int) -> tuple[float, float, float, float]:
    """``box`` (x, y, w, h) clipped to a width x height frame; ConfigError (one line) when it is
    not finite, has no area, or lies mostly outside the frame."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ConfigError(f"target {box!r} is not x,y,w,h") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ConfigError(f"target {box!r} is not finite")
    if w <= 0 or h <= 0:
        raise ConfigError(f"target {box!r} has no area (w and h must be > 0)")
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    if x1 <= x0 or y1 <= y0:
        raise ConfigError(f"target {box!r} lies outside the {width}x{height} frame")
    inside = (x1 - x0) / w * ((y1 - y0) / h)
    if inside < MIN_INSIDE:
        raise ConfigError(f"target {box!r}: only {inside:.1%} of it lies inside the {width}x{height} frame")
    if x1 - x0 < MIN_SIDE_PX or y1 - y0 < MIN_SIDE_PX:
        raise ConfigError(f"target {box!r} is smaller than {MIN_SIDE_PX:g} px inside the frame")
    return (x0, y0, x1 - x0, y1 - y0)
