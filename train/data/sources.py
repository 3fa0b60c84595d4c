"""Training videos from the usual datasets, as (frames, boxes, visible) triples.

- ``otb``/``lasot``/``got10k`` (or ``auto``): the readers of ``edge.evaluation.datasets``
  (LaSOT's absent flags and GOT-10k's absence labels become ``visible = False``);
- ``trackingnet``: ``<root>/TRAIN_*/anno/<seq>.txt`` + ``<root>/TRAIN_*/frames/<seq>/<i>.jpg``;
- ``coco``: a COCO-style detection set (``annotations.json`` + images): every object is a one-frame
  video, so template and search come from the same image (with different jitter);
- ``video``: user videos ``<name>.mp4|avi|mov`` with ``<name>.txt`` boxes, decoded once to a cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from edge.errors import DatasetError
from edge.evaluation.datasets import find_sequences, read_boxes

KINDS = ("auto", "otb", "lasot", "got10k", "trackingnet", "coco", "video")


@dataclass
class Video:
    name: str
    frames: list[str]
    boxes: np.ndarray        # (N, 4) xywh
    visible: np.ndarray      # (N,) bool

    def __len__(self) -> int:
        return len(self.frames)


def _valid(boxes: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > 1) & (boxes[:, 3] > 1)


def _from_sequences(root: str) -> list[Video]:
    return [Video(s.name, s.frames, s.gt, ~s.absent & _valid(s.gt)) for s in find_sequences(root)]


def _trackingnet(root: str) -> list[Video]:
    videos = []
    chunks = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "anno")))
    for chunk in chunks or ["."]:
        anno_dir = os.path.join(root, chunk, "anno")
        if not os.path.isdir(anno_dir):
            continue
        for name in sorted(os.listdir(anno_dir)):
            if not name.endswith(".txt"):
                continue
            seq = name[:-4]
            frame_dir = os.path.join(root, chunk, "frames", seq)
            if not os.path.isdir(frame_dir):
                continue
            files = sorted((f for f in os.listdir(frame_dir) if f.lower().endswith((".jpg", ".png"))),
                           key=lambda f: int(os.path.splitext(f)[0]) if os.path.splitext(f)[0].isdigit() else f)
            boxes = read_boxes(os.path.join(anno_dir, name))
            n = min(len(files), len(boxes))
            videos.append(Video(seq, [os.path.join(frame_dir, f) for f in files[:n]], boxes[:n], _valid(boxes[:n])))
    return videos


def _coco(root: str) -> list[Video]:
    candidates = [os.path.join(root, n) for n in ("annotations.json", "instances.json")]
    candidates += [os.path.join(root, "annotations", n) for n in sorted(os.listdir(os.path.join(root, "annotations")))
                   if n.endswith(".json")] if os.path.isdir(os.path.join(root, "annotations")) else []
    path = next((p for p in candidates if os.path.isfile(p)), None)
    if path is None:
        raise DatasetError(f"{root}: no COCO annotations (annotations.json or annotations/*.json)")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    images = {im["id"]: im["file_name"] for im in data.get("images", [])}
    image_dir = next((d for d in (os.path.join(root, "images"), root) if os.path.isdir(d)), root)
    videos = []
    for ann in data.get("annotations", []):
        x, y, w, h = ann["bbox"]
        if ann.get("iscrowd") or w < 4 or h < 4 or ann["image_id"] not in images:
            continue
        videos.append(Video(f"coco-{ann['id']}", [os.path.join(image_dir, images[ann["image_id"]])],
                            np.array([[x, y, w, h]], np.float64), np.array([True])))
    return videos


def _videos(root: str, cache: str | None) -> list[Video]:
    import cv2

    cache = cache or os.path.join(root, ".frames")
    out = []
    for name in sorted(os.listdir(root)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in (".mp4", ".avi", ".mov", ".mkv") or not os.path.isfile(os.path.join(root, stem + ".txt")):
            continue
        boxes = read_boxes(os.path.join(root, stem + ".txt"))
        folder = os.path.join(cache, stem)
        if not os.path.isdir(folder) or len(os.listdir(folder)) < len(boxes):
            os.makedirs(folder, exist_ok=True)
            cap = cv2.VideoCapture(os.path.join(root, name))
            i = 0
            while i < len(boxes):
                ok, frame = cap.read()
                if not ok:
                    break
                cv2.imwrite(os.path.join(folder, f"{i:06d}.jpg"), frame)
                i += 1
            cap.release()
        frames = sorted(os.path.join(folder, f) for f in os.listdir(folder))
        n = min(len(frames), len(boxes))
        out.append(Video(stem, frames[:n], boxes[:n], _valid(boxes[:n])))
    return out


def load_videos(root: str, kind: str = "auto", cache: str | None = None, exclude=()) -> list[Video]:
    """The usable videos under ``root``, less the sequences named in ``exclude`` (those a config
    holds out because the validation split has them too); an excluded name that is not there is an
    error, since a typo would put a validation sequence back into training."""
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset kind '{kind}' (valid: {', '.join(KINDS)})")
    if not os.path.isdir(root):
        raise DatasetError(f"no such dataset folder: {root}")
    if kind in ("auto", "otb", "lasot", "got10k"):
        videos = _from_sequences(root)
    elif kind == "trackingnet":
        videos = _trackingnet(root)
    elif kind == "coco":
        videos = _coco(root)
    else:
        videos = _videos(root, cache)
    missing = set(exclude) - {v.name for v in videos}
    if missing:
        raise DatasetError(f"data source {root}: excluded sequence '{sorted(missing)[0]}' is not there")
    videos = [v for v in videos if v.visible.any() and v.name not in set(exclude)]
    if not videos:
        raise DatasetError(f"{root}: no usable {kind} sequences (none with a visible, non-empty box)")
    return videos
