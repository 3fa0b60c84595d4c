"""The cached feature pool (``feature_pool.build_pool``) as a torch Dataset, stored beside the run."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch

from train.data.feature_pool import PoolSpec, build_pool

log = logging.getLogger("train")


def load_or_build_pool(path: str, sources, spec: PoolSpec, samples: int, seed: int, model_dir: str, stem) -> dict:
    """The pool at ``path`` if it was built from the same recipe, else a new one saved there."""
    recipe = repr((sorted((s.path, s.kind, s.weight, *sorted(s.exclude)) for s in sources), spec, samples, seed))
    if os.path.isfile(path):
        with np.load(path) as data:
            if str(data["recipe"]) == recipe:
                log.info("feature pool: reusing %s", path)
                return {k: data[k] for k in data.files if k != "recipe"}
    pool = build_pool(sources, spec, samples, seed, model_dir, stem)
    tmp = path + ".part.npz"
    np.savez(tmp, recipe=np.array(recipe), **pool)
    os.replace(tmp, path)
    return pool


class PoolDataset(torch.utils.data.Dataset):
    """``samples_per_epoch`` pairs per epoch, a fresh seeded draw from the pool each epoch."""

    def __init__(self, pool: dict, samples_per_epoch: int, seed: int) -> None:
        self.pool, self.samples, self.seed = pool, samples_per_epoch, seed
        self.size = len(pool["label"])
        self.order = np.arange(self.size)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng(self.seed + epoch)
        self.order = (rng.permutation(self.size) if self.samples <= self.size
                      else rng.integers(0, self.size, self.samples))

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict:
        i = int(self.order[index % len(self.order)])
        return {k: torch.from_numpy(np.asarray(v[i], dtype=np.float32)) for k, v in self.pool.items()}
