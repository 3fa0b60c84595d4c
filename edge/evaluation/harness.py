"""Run any tracker with init/update verbs over a sequence and time it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edge.camera.folder import read_rgb
from edge.evaluation.datasets import Sequence
from edge.trackers.lost_search import LostSearch


@dataclass
class SequenceRun:
    boxes: np.ndarray    # (N, 4) xywh, frame 0 = the init box
    scores: np.ndarray   # (N,)
    states: list[str]
    fps: float           # frames per second of update() alone (image decoding excluded)


def run_sequence(tracker, sequence: Sequence, progress=None) -> SequenceRun:
    """``tracker`` over ``sequence`` from its first box, through the same per-frame step as the
    device (``LostSearch``: the search widens while LOST)."""
    if not isinstance(tracker, LostSearch):
        tracker = LostSearch(tracker)
    n = len(sequence)
    boxes = np.zeros((n, 4))
    scores = np.zeros(n)
    states = []
    first = tracker.init(read_rgb(sequence.frames[0]), sequence.gt[0])
    boxes[0], scores[0] = first.box, first.score
    states.append(first.state.value)
    spent = 0.0
    for i in range(1, n):
        frame = read_rgb(sequence.frames[i])
        start = time.perf_counter()
        result = tracker.update(frame)
        spent += time.perf_counter() - start
        boxes[i], scores[i] = result.box, result.score
        states.append(result.state.value)
        if progress is not None:
            progress.advance()
    fps = (n - 1) / spent if spent > 0 else float("nan")
    return SequenceRun(boxes=boxes, scores=scores, states=states, fps=fps)
