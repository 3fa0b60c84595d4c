"""Box arithmetic shared by the tracker, the evaluation and the outputs.

Boxes are (x, y, w, h) in frame pixels with (x, y) the top-left corner, unless a name says
otherwise (``cxcywh``, ``xyxy``).
"""

from __future__ import annotations

import math

import numpy as np

from edge.trackers.crop import CropWindow

# The official tracker keeps every box at least this many pixels wide/high and inside the frame.
CLIP_MARGIN_PX = 10


def map_box_back(pred_cxcywh: np.ndarray, prev_box_xywh, window: CropWindow,
                 search_size: int) -> tuple[float, float, float, float]:
    """Network box (cx, cy, w, h), normalised to the search crop, -> frame box (x, y, w, h).

    Follows the official ``map_box_back`` (spec section 3): the scaling runs in float32 as it does
    in torch, and the crop is assumed centred on the previous box's centre (the integer rounding
    of the crop origin is ignored, as upstream does; it is at most half a pixel).
    """
    pred = np.asarray(pred_cxcywh, dtype=np.float32).reshape(-1, 4).mean(axis=0, dtype=np.float32)
    pred = pred * np.float32(search_size) / np.float32(window.resize_factor)
    cx, cy, w, h = (float(v) for v in pred)
    px, py, pw, ph = (float(v) for v in prev_box_xywh)
    half_side = 0.5 * search_size / window.resize_factor
    cx_frame = cx + (px + 0.5 * pw - half_side)
    cy_frame = cy + (py + 0.5 * ph - half_side)
    return (cx_frame - 0.5 * w, cy_frame - 0.5 * h, w, h)


def clip_box(box_xywh, height: int, width: int, margin: float = CLIP_MARGIN_PX):
    """Keep a box inside the frame and at least ``margin`` pixels wide/high (official clip_box)."""
    x1, y1, w, h = (float(v) for v in box_xywh)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0.0, x1), width - margin)
    x2 = min(max(margin, x2), width)
    y1 = min(max(0.0, y1), height - margin)
    y2 = min(max(margin, y2), height)
    return (x1, y1, max(margin, x2 - x1), max(margin, y2 - y1))


def is_finite_box(box) -> bool:
    return box is not None and len(box) == 4 and all(math.isfinite(float(v)) for v in box)
