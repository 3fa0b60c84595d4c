"""The sample clip bundled with the package (OTB "Crossing", see its ATTRIBUTION.md)."""

from __future__ import annotations

import os

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sample", "Crossing")
SAMPLE_FRAMES = os.path.join(SAMPLE_DIR, "img")
SAMPLE_GROUNDTRUTH = os.path.join(SAMPLE_DIR, "groundtruth_rect.txt")
# The MixFormerV2 model bundled with the package (`mixformerv2-nanostem224`; its card is beside it).
BUNDLED_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "model", "edge-track-default.onnx")


def first_box_beside(source: str):
    """The first ground-truth box of an annotated image folder (``<seq>/img`` or ``<seq>``), if any."""
    from edge.evaluation.datasets import read_boxes

    folder = os.path.normpath(source)
    for candidate in (os.path.dirname(folder), folder):
        for name in ("groundtruth_rect.txt", "groundtruth.txt"):
            path = os.path.join(candidate, name)
            if os.path.isfile(path):
                return tuple(float(v) for v in read_boxes(path)[0])
    return None
