"""The square crop around a target, exactly as the official tracker takes it.

Reproduces ``sample_target`` of the official code (spec section 3) bit for bit: the side is
``ceil(sqrt(w*h) * factor)``, the origin is rounded half-to-even (Python's ``round``), outside
pixels are zero, and the right/bottom padding starts one pixel early (``x2 - W + 1``) so that a
crop ending exactly on the border replaces the last real column/row by padding. The model was
trained on crops made this way; matching them keeps a converted checkpoint's accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropWindow:
    """Where a square crop sits in the frame.

    ``x1, y1`` is the integer top-left corner (may be negative), ``side`` the crop side in frame
    pixels, and ``resize_factor`` = output size / side (network pixels per frame pixel).
    """

    x1: int
    y1: int
    side: int
    resize_factor: float


def crop_window(box_xywh, factor: float, output_size: int) -> CropWindow:
    """The crop window for a target box (x, y, w, h) and a context factor.

    Raises ValueError for a box with no area, as the official code does (a tracker clips its
    boxes to at least 10 px, so this only happens with a bad initial box).
    """
    x, y, w, h = (float(v) for v in box_xywh)
    area = w * h
    if not (math.isfinite(area) and w > 0 and h > 0):
        raise ValueError(f"box must have positive finite width and height, got {box_xywh!r}")
    side = math.ceil(math.sqrt(area) * factor)
    if side < 1:
        raise ValueError(f"box {box_xywh!r} is too small for a crop with factor {factor}")
    # Python's round() on floats is half-to-even, like the official code.
    x1 = round(x + 0.5 * w - side * 0.5)
    y1 = round(y + 0.5 * h - side * 0.5)
    return CropWindow(x1=x1, y1=y1, side=side, resize_factor=output_size / side)


def crop_and_resize(frame: np.ndarray, window: CropWindow, output_size: int) -> np.ndarray:
    """Cut ``window`` out of ``frame`` (H, W, C) uint8, zero-padded, resized to output_size².

    Returns (output_size, output_size, C) uint8 in the frame's colour order.
    """
    height, width = frame.shape[:2]
    x1, y1, side = window.x1, window.y1, window.side
    x2, y2 = x1 + side, y1 + side
    # The valid part ends at min(x2, W - 1): the official padding of x2 - W + 1 columns.
    src_x1, src_x2 = max(x1, 0), min(x2, width - 1)
    src_y1, src_y2 = max(y1, 0), min(y2, height - 1)
    if x1 >= 0 and y1 >= 0 and x2 <= width - 1 and y2 <= height - 1:
        padded = frame[y1:y2, x1:x2]  # no padding needed: a view, no copy
    else:
        padded = np.zeros((side, side) + frame.shape[2:], dtype=frame.dtype)
        if src_x2 > src_x1 and src_y2 > src_y1:
            padded[src_y1 - y1:src_y2 - y1, src_x1 - x1:src_x2 - x1] = frame[src_y1:src_y2, src_x1:src_x2]
    return cv2.resize(padded, (output_size, output_size))


def sample_target(frame: np.ndarray, box_xywh, factor: float, output_size: int):
    """Crop + resize in one call: returns (patch (S, S, C) uint8, CropWindow)."""
    window = crop_window(box_xywh, factor, output_size)
    return crop_and_resize(frame, window, output_size), window
