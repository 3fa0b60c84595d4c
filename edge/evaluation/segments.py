"""Temporal robustness (OTB's TRE): one sequence tracked from several starting frames.

A short sequence scored from its first frame alone is one draw: one early jump to a look-alike
and its AUC falls by half. Starting again at evenly spaced frames (each run initialised from the
ground truth there, scored to the end) gives several draws of the same footage, so a choice
made on a small validation split depends less on one unlucky frame.
"""

from __future__ import annotations

from edge.errors import ConfigError
from edge.evaluation.datasets import Sequence

MIN_FRAMES = 10   # a segment shorter than this says little


def temporal_segments(sequence: Sequence, starts: int) -> list[Sequence]:
    """``starts`` runs of ``sequence``: from frame 0, n/starts, 2n/starts, ... (each moved on to
    the next frame where the target is present; a later start is dropped if fewer than MIN_FRAMES
    remain, the first never, so no sequence drops out of the mean).
    The run from frame 0 keeps the sequence's name; the others are named ``name@start``."""
    if starts < 1:
        raise ConfigError(f"--starts must be at least 1, got {starts}")
    n, out, seen = len(sequence), [], set()
    for k in range(starts):
        start = k * n // starts
        while start < n and sequence.absent[start]:
            start += 1
        if start in seen or start >= n or (k > 0 and n - start < MIN_FRAMES):
            continue
        seen.add(start)
        name = sequence.name if start == 0 else f"{sequence.name}@{start}"
        out.append(Sequence(name=name, frames=sequence.frames[start:], gt=sequence.gt[start:],
                            absent=sequence.absent[start:]))
    return out
