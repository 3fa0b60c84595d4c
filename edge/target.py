"""What to track: a request to the tracking loop, and the text forms of a target ('x,y,w,h',
'center:WxH') a config, a command line or a web page gives."""

from __future__ import annotations

from dataclasses import dataclass

from edge.boxes import parse_box
from edge.errors import ConfigError

ROI_PREFIX = "center:"


@dataclass(frozen=True)
class TargetRequest:
    """Start tracking ``box`` (pixels, x, y, w, h), ``roi`` ("center:WxH"), or ``remote`` (an
    object with ``box_in(width, height)``, e.g. a ground station's normalised rectangle);
    with none of them: stop tracking."""

    box: tuple | None = None
    roi: str | None = None
    remote: object = None
    recenter: bool = False         # with no target: also move the head to neutral
    hold_outputs: bool = False     # keep tracking, but tell the outputs to hold (dry run starts)
    source: str = "api"

    @property
    def is_stop(self) -> bool:
        return self.box is None and self.roi is None and self.remote is None and not self.hold_outputs


def parse_roi_size(text: str, option: str = "init") -> tuple[float, float]:
    """'center:WxH' -> (W, H), both positive and finite."""
    try:
        w, h = (float(v) for v in text.strip()[len(ROI_PREFIX):].lower().split("x"))
    except ValueError:
        w = h = float("nan")
    if not (0 < w < float("inf") and 0 < h < float("inf")):
        raise ConfigError(f"{option}: ROI must look like center:WxH (pixels, > 0), got {text!r}")
    return w, h


def parse_target(text: str, width: int, height: int, option: str = "init") -> tuple[float, float, float, float]:
    """'x,y,w,h' or 'center:WxH' -> a pixel box (x, y, w, h) in a width x height frame."""
    text = text.strip()
    if text.startswith(ROI_PREFIX):
        w, h = parse_roi_size(text, option)
        if not (w <= width and h <= height):
            raise ConfigError(f"{option}: ROI {text} does not fit the {width}x{height} frame")
        return ((width - w) / 2, (height - h) / 2, w, h)
    return parse_box(text, option)


def check_target(text: str, option: str = "init") -> None:
    """Raise ConfigError unless ``text`` is a target in one of the two forms (frame size unknown)."""
    if text.strip().startswith(ROI_PREFIX):
        parse_roi_size(text, option)
    else:
        parse_box(text, option)


def initial_request(text: str, option: str = "tracking.init") -> TargetRequest | None:
    """The request a config's ``tracking.init`` makes: None when empty."""
    if not text.strip():
        return None
    check_target(text, option)
    if text.strip().startswith(ROI_PREFIX):
        return TargetRequest(roi=text.strip(), source="config")
    return TargetRequest(box=parse_box(text, option), source="config")
