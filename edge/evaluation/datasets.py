"""Find and read annotated sequences in the layouts of the common benchmarks.

- OTB style: ``<seq>/img/*.jpg`` + ``<seq>/groundtruth_rect.txt`` (also user clips).
- LaSOT: ``<category>/<seq>/img/*.jpg`` + ``groundtruth.txt`` + ``full_occlusion.txt`` and
  ``out_of_view.txt`` (comma-separated 0/1 flags); a frame is absent if either flag is 1.
- GOT-10k: ``<seq>/*.jpg`` + ``groundtruth.txt`` (+ ``absence.label``, one 0/1 per line).

Box files take ``,``, tab or spaces as separators; a NaN line marks an absent target.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from edge.camera.folder import list_images
from edge.errors import DatasetError


@dataclass
class Sequence:
    name: str
    frames: list[str]        # image paths in order
    gt: np.ndarray           # (N, 4) float64 xywh
    absent: np.ndarray       # (N,) bool

    def __len__(self) -> int:
        return len(self.frames)


_SPLIT = re.compile(r"[,\s]+")


def read_boxes(path: str) -> np.ndarray:
    """(N, 4) float64 from an x,y,w,h-per-line file; NaN rows where the line says NaN."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read box file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        parts = [p for p in _SPLIT.split(text) if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise DatasetError(f"{path}:{number}: expected 4 numbers x,y,w,h, got {text!r}") from None
        if len(values) != 4:
            raise DatasetError(f"{path}:{number}: expected 4 numbers x,y,w,h, got {len(values)}")
        rows.append(values)
    if not rows:
        raise DatasetError(f"{path} holds no boxes")
    return np.asarray(rows, dtype=np.float64)


def _read_flags(path: str) -> np.ndarray:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return np.asarray([int(float(v)) for v in _SPLIT.split(text.strip()) if v], dtype=bool)


def _gt_file(folder: str) -> str | None:
    for name in ("groundtruth_rect.txt", "groundtruth.txt"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def load_sequence(folder: str, name: str | None = None) -> Sequence:
    gt_path = _gt_file(folder)
    if gt_path is None:
        raise DatasetError(f"{folder}: no groundtruth_rect.txt or groundtruth.txt")
    img_dir = os.path.join(folder, "img")
    frames = list_images(img_dir) if os.path.isdir(img_dir) else list_images(folder)
    if not frames:
        raise DatasetError(f"{folder}: no images found (in img/ or beside the ground truth)")
    gt = read_boxes(gt_path)
    if len(frames) < len(gt):
        raise DatasetError(f"{folder}: {len(frames)} images but {len(gt)} ground-truth boxes")
    frames = frames[:len(gt)]  # some OTB sequences annotate only a prefix of their frames
    absent = ~np.all(np.isfinite(gt), axis=1)
    for flag_file in ("full_occlusion.txt", "out_of_view.txt", "absence.label"):
        path = os.path.join(folder, flag_file)
        if os.path.isfile(path):
            flags = _read_flags(path)
            if len(flags) != len(gt):
                raise DatasetError(f"{path}: {len(flags)} flags for {len(gt)} frames")
            absent |= flags
    if absent[0] or not (gt[0, 2] > 0 and gt[0, 3] > 0):
        raise DatasetError(f"{folder}: the first frame has no valid box to start from")
    return Sequence(name=name or os.path.basename(os.path.normpath(folder)), frames=frames,
                    gt=gt, absent=absent)


def find_sequences(root: str) -> list[Sequence]:
    """Every sequence at or below ``root`` (two levels, for LaSOT's categories), sorted by name."""
    if not os.path.isdir(root):
        raise DatasetError(f"no such sequence folder: {root}")
    if _gt_file(root):
        return [load_sequence(root)]
    found = []
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if not os.path.isdir(path):
            continue
        if _gt_file(path):
            found.append(load_sequence(path))
            continue
        for sub in sorted(os.listdir(path)):
            sub_path = os.path.join(path, sub)
            if os.path.isdir(sub_path) and _gt_file(sub_path):
                found.append(load_sequence(sub_path))
    if not found:
        raise DatasetError(f"no sequences under {root} (expected <seq>/img/*.jpg with "
                           f"groundtruth_rect.txt, LaSOT or GOT-10k folders)")
    return found


# What ``edge-track track --csv`` writes: one row per frame, frame 0 the given box.
TRACK_CSV_HEADER = "x,y,w,h,score,state"


def read_track_csv(path: str) -> tuple[np.ndarray, list[str]]:
    """(boxes (N, 4), states) from a ``track --csv`` file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not lines or lines[0].strip() != TRACK_CSV_HEADER:
        raise DatasetError(f"{path}: not a track --csv file (its first line must be {TRACK_CSV_HEADER})")
    boxes, states = [], []
    for number, line in enumerate(lines[1:], 2):
        parts = line.strip().split(",")
        try:
            if len(parts) != 6:
                raise ValueError
            boxes.append([float(v) for v in parts[:4]])
        except ValueError:
            raise DatasetError(f"{path}:{number}: expected {TRACK_CSV_HEADER}, got {line.strip()[:80]!r}") from None
        states.append(parts[5])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), states


def read_results(results_dir: str, sequence: Sequence) -> tuple[np.ndarray, list[str] | None]:
    """(boxes, states or None) saved for ``sequence``: ``<name>.txt`` (boxes only) or the
    ``<name>.csv`` that ``track --csv`` wrote (boxes and states)."""
    txt, csv = (os.path.join(results_dir, f"{sequence.name}{ext}") for ext in (".txt", ".csv"))
    if os.path.isfile(txt):
        path, (boxes, states) = txt, (read_boxes(txt), None)
    elif os.path.isfile(csv):
        path, (boxes, states) = csv, read_track_csv(csv)
    else:
        raise DatasetError(f"no result file for sequence {sequence.name}: {txt} (or .csv)")
    if len(boxes) != len(sequence):
        raise DatasetError(f"{path}: {len(boxes)} boxes for {len(sequence)} frames")
    return boxes, states
