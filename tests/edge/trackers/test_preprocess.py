"""The normaliser: the official arithmetic (to float32 rounding), channel order, raw-pixel models."""

import numpy as np
import pytest

from edge.engines.model_meta import ModelMeta
from edge.trackers.preprocess import Normalizer

BASE = ModelMeta(preset="t", template_size=16, search_size=32, search_factor=4.0, bins=8, update_interval=25)
RAW = BASE.replace(mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3, color_order="BGR")


def official(meta, patch, frame_order):
    """The official Preprocessor's steps, one numpy temporary each."""
    if frame_order != meta.color_order:
        patch = patch[..., ::-1]
    x = patch.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(meta.mean, np.float32).reshape(1, 1, 3)) / np.asarray(meta.std, np.float32).reshape(1, 1, 3)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


@pytest.mark.parametrize("meta", [BASE, RAW], ids=["imagenet", "raw"])
@pytest.mark.parametrize("frame_order", ["RGB", "BGR"])
def test_matches_the_official_arithmetic(meta, frame_order):
    patch = np.random.default_rng(0).integers(0, 256, (32, 24, 3), dtype=np.uint8)
    got = Normalizer(meta, frame_order)(patch)
    want = official(meta, patch, frame_order)
    assert got.shape == (1, 3, 32, 24) and got.dtype == np.float32 and got.flags.c_contiguous
    # Folding into x * scale + bias changes only float32 rounding: a few ulp of the largest value.
    assert np.abs(got - want).max() <= 4 * np.spacing(np.abs(want).max())


def test_channels_follow_the_model_order():
    patch = np.zeros((4, 4, 3), np.uint8)
    patch[..., 0] = 10          # frame channel 0
    x = Normalizer(RAW, "RGB")(patch)            # model wants BGR: frame channel 0 is the model's last
    assert x[0, 2].max() == 10 and x[0, 0].max() == 0
    x = Normalizer(RAW, "BGR")(patch)
    assert x[0, 0].max() == 10


def test_raw_pixel_models_get_the_exact_integers():
    patch = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    x = Normalizer(RAW, "BGR")(patch)
    assert np.array_equal(x[0].transpose(1, 2, 0), patch.astype(np.float32))
