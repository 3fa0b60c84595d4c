"""Turn an image patch into the network's input tensor, as the model metadata says."""

from __future__ import annotations

import numpy as np

from edge.model_meta import ModelMeta


class Normalizer:
    """(S, S, 3) uint8 patch in the frame's colour order -> (1, 3, S, S) float32, normalised.

    The arithmetic (``x / 255``, minus mean, over std, all float32) matches the official
    ``Preprocessor`` so exported models see the inputs they were trained on.
    """

    def __init__(self, meta: ModelMeta, frame_color_order: str = "RGB") -> None:
        self._mean = np.asarray(meta.mean, dtype=np.float32).reshape(1, 1, 3)
        self._std = np.asarray(meta.std, dtype=np.float32).reshape(1, 1, 3)
        # Swap channels only when the frames and the model disagree.
        self._swap = frame_color_order != meta.color_order

    def __call__(self, patch: np.ndarray) -> np.ndarray:
        if self._swap:
            patch = patch[..., ::-1]
        x = patch.astype(np.float32) / np.float32(255.0)
        x = (x - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
