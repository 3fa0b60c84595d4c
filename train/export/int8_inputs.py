"""INT8 inputs: the network inputs static INT8 measures its activation ranges on, made the way the
tracker makes them.

Sources:
- an ``.npz`` of recorded inputs keyed by the model's input names (``template``,
  ``online_template``, ``search``; leading axis = sample), e.g. from ``edge-track calibrate int8``;
- annotated sequences (one, or a folder of them): template at the first box, online template at
  a later box, search region around the previous frame's box, as in tracking;
- a video or image folder without boxes: crops around seeded random boxes (10-40 % of the frame).

Crops and normalisation come from ``edge.trackers.crop`` and ``edge.trackers.preprocess``: the same code the
runtime runs, so the activation ranges are measured on exactly the runtime's input distribution.
"""

from __future__ import annotations

import os

import numpy as np

from edge.camera import open_source
from edge.camera.folder import read_rgb
from edge.engines.model_meta import INPUT_NAMES, ModelMeta
from edge.errors import ConfigError, DatasetError, EdgeTrackError, SourceError
from edge.evaluation.datasets import find_sequences
from edge.trackers.crop import sample_target
from edge.trackers.preprocess import Normalizer


def _crop(meta: ModelMeta, normalize, frame, box, template: bool) -> np.ndarray:
    factor, size = ((meta.template_factor, meta.template_size) if template
                    else (meta.search_factor, meta.search_size))
    patch, _ = sample_target(frame, box, factor, size)
    return normalize(patch)


def _from_npz(path: str, meta: ModelMeta) -> list[dict[str, np.ndarray]]:
    try:
        data = np.load(path)
    except Exception as exc:
        raise ConfigError(f"cannot read INT8 inputs file {path}: {exc}") from None
    missing = [n for n in INPUT_NAMES if n not in data.files]
    if missing:
        raise ConfigError(f"{path} lacks '{missing[0]}' (expected arrays {', '.join(INPUT_NAMES)})")
    sizes = {"template": meta.template_size, "online_template": meta.template_size, "search": meta.search_size}
    arrays = {}
    for name, size in sizes.items():
        a = np.asarray(data[name], dtype=np.float32)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[1:] != (3, size, size):
            raise ConfigError(f"{path}: '{name}' has shape {a.shape}, the model needs (N, 3, {size}, {size})")
        arrays[name] = a
    count = min(len(a) for a in arrays.values())
    return [{n: arrays[n][i:i + 1] for n in INPUT_NAMES} for i in range(count)]


def _from_sequences(root: str, meta: ModelMeta, samples: int, rng) -> list[dict[str, np.ndarray]]:
    sequences = find_sequences(root)
    normalize = Normalizer(meta)
    feeds = []
    per_seq = max(1, -(-samples // len(sequences)))
    for seq in sequences:
        valid = [i for i in range(1, len(seq)) if not seq.absent[i] and not seq.absent[i - 1]]
        if not valid:
            continue
        first = read_rgb(seq.frames[0])
        template = _crop(meta, normalize, first, seq.gt[0], template=True)
        for k in sorted(rng.choice(valid, size=min(per_seq, len(valid)), replace=False)):
            frame = read_rgb(seq.frames[k])
            j = int(rng.integers(0, k))
            online = template if j == 0 else _crop(meta, normalize, read_rgb(seq.frames[j]), seq.gt[j], True)
            feeds.append({"template": template, "online_template": online,
                          "search": _crop(meta, normalize, frame, seq.gt[k - 1], template=False)})
    return feeds[:samples]


def _from_frames(src: str, meta: ModelMeta, samples: int, rng) -> list[dict[str, np.ndarray]]:
    source = open_source(src)
    try:
        frames = [f.image for f in source]
    finally:
        source.close()
    if not frames:
        raise SourceError(f"INT8 input source {src} yielded no frames")
    normalize = Normalizer(meta)
    picks = np.linspace(0, len(frames) - 1, num=min(samples, len(frames))).astype(int)
    feeds = []
    for k in picks:
        frame = frames[k]
        height, width = frame.shape[:2]
        side = rng.uniform(0.1, 0.4) * min(height, width)
        w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
        box = (rng.uniform(0, width - w), rng.uniform(0, height - h), w, h)
        shifted = (box[0] + rng.normal(0, 0.1 * w), box[1] + rng.normal(0, 0.1 * h), w, h)
        template = _crop(meta, normalize, frames[0] if k else frame, box, template=True)
        feeds.append({"template": template, "online_template": _crop(meta, normalize, frame, box, True),
                      "search": _crop(meta, normalize, frame, shifted, template=False)})
    return feeds


def int8_feeds(src: str, meta: ModelMeta, samples: int = 64, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """A list of feeds {input name: (1, 3, S, S) float32} for the contract graph."""
    if not os.path.exists(src) and not str(src).isdigit():
        raise SourceError(f"INT8 input source not found: {src}")
    rng = np.random.default_rng(seed)
    if str(src).endswith(".npz"):
        feeds = _from_npz(src, meta)
    elif os.path.isdir(src):
        try:
            feeds = _from_sequences(src, meta, samples, rng)
        except DatasetError:
            feeds = _from_frames(src, meta, samples, rng)
    else:
        feeds = _from_frames(src, meta, samples, rng)
    if not feeds:
        raise EdgeTrackError(f"INT8 input source {src} yielded no network inputs")
    return feeds[:samples] if not str(src).endswith(".npz") else feeds
