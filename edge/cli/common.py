"""Argument parsing shared by the sub-commands."""

from __future__ import annotations

import math

from edge.errors import ConfigError


def parse_box(text: str, option: str = "--init") -> tuple[float, float, float, float]:
    """'x,y,w,h' -> floats, with w and h positive."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise ConfigError(f"{option} must be x,y,w,h with w and h > 0 (pixels), got {text!r}")
    return values  # type: ignore[return-value]


def positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_tracker_overrides(parser) -> None:
    parser.add_argument("--search-factor", type=positive_float, metavar="F",
                        help="search crop side / sqrt(w*h) of the box (default: from the model)")
    parser.add_argument("--update-interval", type=positive_int, metavar="N",
                        help="frames between online-template updates (default: from the model)")
    parser.add_argument("--size-update-rate", type=positive_float, metavar="R",
                        help="fraction of each predicted size change applied, (0, 1] (default: from the model)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="inference threads (default: onnxruntime's, one per physical core)")


def tracker_overrides(args) -> dict:
    return {"search_factor": args.search_factor, "update_interval": args.update_interval,
            "size_update_rate": args.size_update_rate}
