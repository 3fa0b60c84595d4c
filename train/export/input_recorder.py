"""Record the exact network inputs the tracker builds, for ``edge-track quantize --calib``.

The tracker runs as it does on the device (same crops, factors, colour order, resizing and
normalisation); an engine wrapper keeps a copy of what it is given. Samples are spread over the
run: every ``every``-th frame, up to ``max_samples``. The .npz is keyed by the model's input names
(``template``, ``online_template``, ``search``), first axis = sample.
"""

from __future__ import annotations

import os

import numpy as np

from edge.engines import open_engine
from edge.engines.model_meta import INPUT_NAMES
from edge.errors import EdgeTrackError
from edge.trackers.mixformer import MixFormerTracker


class RecordingEngine:
    """Passes everything to the real engine and keeps the inputs of chosen frames."""

    def __init__(self, engine, keep) -> None:
        self.engine, self.meta, self.name = engine, engine.meta, engine.name
        self._keep = keep
        self._templates = None
        self.frames = 0
        self.samples: list[dict[str, np.ndarray]] = []

    def set_templates(self, template, online_template) -> None:
        self._templates = (template.copy(), online_template.copy())
        self.engine.set_templates(template, online_template)

    def run(self, search):
        if self._keep(self.frames):
            self.samples.append({"template": self._templates[0], "online_template": self._templates[1],
                                 "search": search.copy()})
        self.frames += 1
        return self.engine.run(search)

    def close(self) -> None:
        self.engine.close()


def record(frames, init_box, model_path: str, *, every: int = 5, max_samples: int = 500, engine=None):
    """frames: iterable of RGB images; returns {input name: (N, 3, S, S) float32}."""
    base = engine or open_engine(model_path)
    recorder = RecordingEngine(base, lambda i: i % every == 0 and len(recorder.samples) < max_samples)
    tracker = MixFormerTracker(recorder)
    first = True
    for image in frames:
        if first:
            tracker.init(image, init_box)
            first = False
        else:
            tracker.update(image)
    if not recorder.samples:
        raise EdgeTrackError("no network inputs recorded: the source gave fewer than two frames")
    return {name: np.concatenate([s[name] for s in recorder.samples]) for name in INPUT_NAMES}


def save(arrays: dict, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    np.savez_compressed(path, **arrays)
