"""Crop, back-projection and clipping against plainly written references."""

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.trackers.crop import crop_window, sample_target
from edge.trackers.geometry import clip_box, map_box_back


def reference_window(box, factor):
    """The crop square as written upstream: (side, x1, y1, x2, y2)."""
    x, y, w, h = box
    side = math.ceil(math.sqrt(w * h) * factor)
    x1 = round(x + 0.5 * w - side * 0.5)
    y1 = round(y + 0.5 * h - side * 0.5)
    return side, x1, y1, x1 + side, y1 + side


def reference_crop(frame, box, factor, out):
    """Pad the whole frame, blank the last row/column when the crop reaches them, then slice."""
    side, x1, y1, x2, y2 = reference_window(box, factor)
    H, W = frame.shape[:2]
    img = frame.copy()
    if x2 >= W:
        img[:, W - 1] = 0
    if y2 >= H:
        img[H - 1, :] = 0
    pad = side + abs(x1) + abs(y1) + 2
    big = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    crop = big[y1 + pad:y2 + pad, x1 + pad:x2 + pad]
    return cv2.resize(crop, (out, out)), side


def official_style_crop(frame, box, factor, out):
    """The upstream slice + copyMakeBorder formulation, valid when the crop overlaps the frame."""
    side, x1, y1, x2, y2 = reference_window(box, factor)
    H, W = frame.shape[:2]
    x1_pad, y1_pad = max(0, -x1), max(0, -y1)
    x2_pad, y2_pad = max(x2 - W + 1, 0), max(y2 - H + 1, 0)
    crop = frame[y1 + y1_pad:y2 - y2_pad, x1 + x1_pad:x2 - x2_pad]
    padded = cv2.copyMakeBorder(crop, y1_pad, y2_pad, x1_pad, x2_pad, cv2.BORDER_CONSTANT)
    return cv2.resize(padded, (out, out))


FRAME = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)


@pytest.mark.parametrize("box", [(30, 20, 20, 15), (0, 0, 30, 30), (100, 70, 20, 20),
                                 (110, 80, 10, 10), (-5, -5, 20, 20), (50.5, 40.5, 7, 9)])
def test_crop_matches_upstream_formulation(box):
    patch, window = sample_target(FRAME, box, 2.0, 32)
    assert np.array_equal(patch, official_style_crop(FRAME, box, 2.0, 32))
    assert window.side == math.ceil(math.sqrt(box[2] * box[3]) * 2.0)


def test_crop_touching_right_border_replaces_last_column():
    # A crop ending exactly at x2 == W: upstream pads one column early (the +1 quirk).
    frame = np.full((40, 40, 3), 200, np.uint8)
    patch, window = sample_target(frame, (30, 10, 10, 10), 1.0, 10)
    assert window.x1 + window.side == 40
    assert (patch[:, -1] == 0).all() and (patch[:, :-1] > 0).all()


def test_half_pixel_origin_rounds_half_to_even():
    # side 5: origin = x + 2.5 - 2.5 = x; 10.5 -> 10, 9.5 -> 10, 11.5 -> 12 (to even, not up)
    assert crop_window((10.5, 0, 5, 5), 1.0, 5).x1 == 10
    assert crop_window((9.5, 0, 5, 5), 1.0, 5).x1 == 10
    assert crop_window((11.5, 0, 5, 5), 1.0, 5).x1 == 12


@settings(max_examples=150, deadline=None)
@given(x=st.floats(-300, 400), y=st.floats(-300, 300), w=st.floats(0.05, 400), h=st.floats(0.05, 400),
       factor=st.sampled_from([1.0, 2.0, 4.4, 5.0]), out=st.sampled_from([8, 16, 33]))
def test_crop_property_matches_reference(x, y, w, h, factor, out):
    box = (x, y, w, h)
    patch, window = sample_target(FRAME, box, factor, out)
    expected, side = reference_crop(FRAME, box, factor, out)
    assert patch.shape == (out, out, 3) and patch.dtype == np.uint8
    assert window.side == side and window.resize_factor == out / side
    assert np.array_equal(patch, expected)


def test_zero_area_box_is_rejected():
    with pytest.raises(ValueError):
        crop_window((10, 10, 0, 5), 2.0, 16)


def reference_map_back(pred, prev, side, search):
    resize = search / side
    cx, cy, w, h = (np.asarray(pred, np.float32) * np.float32(search) / np.float32(resize)).tolist()
    cxp, cyp = prev[0] + prev[2] / 2, prev[1] + prev[3] / 2
    half = 0.5 * search / resize
    return (cx + cxp - half - w / 2, cy + cyp - half - h / 2, w, h)


@settings(max_examples=100, deadline=None)
@given(cx=st.floats(0, 1), cy=st.floats(0, 1), w=st.floats(0, 1), h=st.floats(0, 1),
       px=st.floats(0, 500), py=st.floats(0, 500), pw=st.floats(1, 200), ph=st.floats(1, 200))
def test_map_box_back_matches_formula(cx, cy, w, h, px, py, pw, ph):
    window = crop_window((px, py, pw, ph), 4.5, 224)
    got = map_box_back(np.array([cx, cy, w, h], np.float32), (px, py, pw, ph), window, 224)
    want = reference_map_back([cx, cy, w, h], (px, py, pw, ph), window.side, 224)
    assert np.allclose(got, want, rtol=0, atol=1e-9)


def test_centred_prediction_keeps_the_centre():
    prev = (100.0, 80.0, 40.0, 20.0)
    window = crop_window(prev, 4.0, 128)
    x, y, w, h = map_box_back(np.array([0.5, 0.5, 0.25, 0.125], np.float32), prev, window, 128)
    assert x + w / 2 == pytest.approx(120.0) and y + h / 2 == pytest.approx(90.0)
    assert w == pytest.approx(0.25 * window.side, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(x=st.floats(-1e4, 1e4), y=st.floats(-1e4, 1e4), w=st.floats(-1e3, 1e4), h=st.floats(-1e3, 1e4))
def test_clip_box_keeps_boxes_in_frame_and_at_least_10px(x, y, w, h):
    cx, cy, cw, ch = clip_box((x, y, w, h), 240, 320)
    assert 0 <= cx <= 310 and 0 <= cy <= 230
    assert cw >= 10 and ch >= 10
    assert cx + cw <= 320 + 1e-9 or cw == 10
    assert cy + ch <= 240 + 1e-9 or ch == 10
