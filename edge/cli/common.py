"""Argument parsing shared by the sub-commands."""

from __future__ import annotations

import math


def _number(text: str, convert, ok, expected: str):
    """argparse type body: ``convert(text)`` if it parses and passes ``ok``, else one line saying what
    was ``expected``."""
    import argparse

    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")


def add_model_option(parser, purpose: str) -> None:
    """Add ``--model``, the tracker a command runs, with one wording of what it accepts."""
    parser.add_argument("--model", metavar="NAME|PATH",
                        help=f"{purpose}: a bundled tracker's name (edge-track models), a model file from "
                             "edge-track export or a folder with NanoTrack's two ONNX files (default: the "
                             "default tracker)")


def add_tracker_overrides(parser) -> None:
    """Add --search-factor, --update-interval, --size-update-rate and --threads to ``parser``."""
    parser.add_argument("--search-factor", type=positive_float, metavar="F",
                        help="search crop side / sqrt(w*h) of the box (default: from the model)")
    parser.add_argument("--update-interval", type=positive_int, metavar="N",
                        help="frames between online-template updates (default: from the model)")
    parser.add_argument("--size-update-rate", type=positive_float, metavar="R",
                        help="fraction of each predicted size change applied, (0, 1] (default: from the model)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="inference threads (default: onnxruntime's, one per physical core)")


def tracker_overrides(args) -> dict:
    """The MixFormerTracker keyword arguments those options set (None: the model's own value)."""
    return {"search_factor": args.search_factor, "update_interval": args.update_interval,
            "size_update_rate": args.size_update_rate}


def check_roi(text: str) -> None:
    """``--roi`` as typed: ``center:WxH`` with W, H > 0, or one ConfigError line naming the flag
    (the desk shorthand and ``track`` both take it)."""
    from edge.errors import ConfigError
    from edge.target import ROI_PREFIX, roi_size_from_text

    try:
        if not text.strip().startswith(ROI_PREFIX):
            raise ValueError(f"got {text!r}")
        roi_size_from_text(text)
    except ValueError as exc:
        raise ConfigError(f"--roi must be {ROI_PREFIX}WxH (a box of W x H pixels in the middle of the frame): "
                          f"{exc}") from None
