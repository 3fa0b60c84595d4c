"""Training samples: two templates and a search region from one video, as the official recipe makes
them (spec section 5), with the runtime's own crop and normalisation code.

Per sample: a search frame with a visible target; the template and online template from frames
before it within ``max_gap`` ("causal"); the search box jittered in size by exp(N(0,1) * scale_jitter)
and in position by up to +-0.5 * center_jitter * sqrt(jittered area); templates unjittered. Then
joint grayscale, joint and per-set horizontal flips, per-set brightness. A draw whose search crop
holds no target pixels is rejected and redrawn. Everything is a function of (seed, epoch, index),
so runs repeat exactly whatever the number of worker processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from edge.camera.folder import read_rgb
from edge.trackers.crop import crop_and_resize, crop_window
from edge.trackers.preprocess import Normalizer
from train.config import DataConfig
from train.data.sources import Video


@dataclass
class PairConfig:
    # What a training YAML's data section sets: its defaults are the schema's, written once there.
    center_jitter: float = DataConfig.center_jitter
    scale_jitter: float = DataConfig.scale_jitter
    max_gap: int = DataConfig.max_gap
    negative_p: float = DataConfig.negative_p         # stage 3: searches without the target, labelled 0
    # The crops: the trainer passes the preset's sizes and search factor.
    template_size: int = 112
    search_size: int = 224
    template_factor: float = 2.0
    search_factor: float = 4.5
    # Augmentation (joint grayscale, flips, brightness), fixed for every stage.
    gray_p: float = 0.05
    flip_p: float = 0.5
    brightness: float = 0.2
    max_tries: int = 20                # draws before a sample is given up on (degenerate boxes)


class PairDataset(torch.utils.data.Dataset):
    def __init__(self, sets: list[tuple[list[Video], float]], cfg: PairConfig, samples_per_epoch: int,
                 seed: int = 0, meta=None, keep_rgb: bool = False) -> None:
        if not sets or not any(videos for videos, _ in sets):
            raise ValueError("no videos to sample from")
        self.sets = [(videos, weight) for videos, weight in sets if videos]
        weights = np.array([w for _, w in self.sets], np.float64)
        self.set_p = weights / weights.sum()
        self.cfg = cfg
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.epoch = 0
        self.keep_rgb = keep_rgb
        self.normalize = Normalizer(meta) if meta is not None else _imagenet()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    # -- sampling --------------------------------------------------------------------------------
    def _rng(self, index: int, attempt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, attempt])

    def _pick_frames(self, rng, video: Video):
        visible = np.flatnonzero(video.visible)
        s = int(rng.choice(visible))
        lo = max(0, s - self.cfg.max_gap)
        earlier = visible[(visible >= lo) & (visible <= s)]
        t1, t2 = sorted(int(v) for v in rng.choice(earlier, size=2))
        return t1, t2, s

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        for attempt in range(cfg.max_tries):
            rng = self._rng(index, attempt)
            videos, _ = self.sets[int(rng.choice(len(self.sets), p=self.set_p))]
            video = videos[int(rng.integers(len(videos)))]
            t1, t2, s = self._pick_frames(rng, video)
            negative = cfg.negative_p > 0 and rng.random() < cfg.negative_p
            other = self._other_video(rng, video) if negative else None
            sample = self._make(rng, video, t1, t2, s, negative, other)
            if sample is not None:
                return sample
        raise RuntimeError(f"no valid sample after {cfg.max_tries} tries (index {index}): boxes may be degenerate")

    def _other_video(self, rng, video: Video):
        """Stage 3's negative search frame (spec section 5): a frame of this video where the target is
        absent, or a frame of another video; None when neither exists."""
        absent = np.flatnonzero(~video.visible)
        pool = [v for videos, _ in self.sets for v in videos if v is not video]
        if absent.size and (not pool or rng.random() < 0.5):
            k = int(rng.choice(absent))
            visible = np.flatnonzero(video.visible)
            near = visible[np.argmin(np.abs(visible - k))]         # where the target was last seen
            return _AbsentFrame(video.frames[k], video.boxes[near]), 0
        if not pool:
            return None
        other = pool[int(rng.integers(len(pool)))]
        return other, int(rng.choice(np.flatnonzero(other.visible)))

    def _make(self, rng, video: Video, t1: int, t2: int, s: int, negative: bool, other=None):
        cfg = self.cfg
        images = {i: read_rgb(video.frames[i]) for i in {t1, t2, s}}
        t_patch = self._crop(images[t1], video.boxes[t1], cfg.template_factor, cfg.template_size)[0]
        ot_patch = self._crop(images[t2], video.boxes[t2], cfg.template_factor, cfg.template_size)[0]
        box, gt, search_image = video.boxes[s], video.boxes[s], images[s]
        if negative and other is not None:
            # A search region from another video: this target is not in it.
            other_video, k = other
            search_image, box, gt = read_rgb(other_video.frames[k]), other_video.boxes[k], None
        elif negative:
            # One video only: another place of the same frame, labelled by whether it misses the target.
            h, w = search_image.shape[:2]
            box = np.array([rng.uniform(0, max(1.0, w - box[2])), rng.uniform(0, max(1.0, h - box[3])), box[2], box[3]])
        jittered = self._jitter(rng, box)
        s_patch, target = self._crop(search_image, jittered, cfg.search_factor, cfg.search_size, gt=gt)
        visible = target is not None and (target[2] - target[0]) > 1e-3 and (target[3] - target[1]) > 1e-3
        if not negative and not visible:
            return None                                                 # the crop missed the target
        label = 1.0 if visible else 0.0
        patches = [t_patch, ot_patch, s_patch]
        if rng.random() < cfg.gray_p:                                   # joint grayscale
            patches = [cv2.cvtColor(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for p in patches]
        if rng.random() < cfg.flip_p:                                   # joint flip
            patches, target = [p[:, ::-1] for p in patches], _flip(target)
        out_patches = []
        for i, p in enumerate(patches):                                 # per set: brightness, flip
            p = np.clip(p.astype(np.float32) * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness),
                        0, 255).astype(np.uint8)
            if rng.random() < cfg.flip_p:
                p = p[:, ::-1]
                if i == 2:
                    target = _flip(target)
            out_patches.append(np.ascontiguousarray(p))
        target = np.zeros(4, np.float32) if target is None else np.clip(target, 0.0, 1.0).astype(np.float32)
        sample = {"template": torch.from_numpy(self.normalize(out_patches[0])[0]),
                  "online_template": torch.from_numpy(self.normalize(out_patches[1])[0]),
                  "search": torch.from_numpy(self.normalize(out_patches[2])[0]),
                  "target_xyxy": torch.from_numpy(target), "label": torch.tensor(label)}
        if self.keep_rgb:
            sample["template_rgb"] = torch.from_numpy(out_patches[0])
            sample["search_rgb"] = torch.from_numpy(out_patches[2])
        return sample

    def _jitter(self, rng, box):
        cfg = self.cfg
        x, y, w, h = box
        size = np.array([w, h]) * np.exp(rng.standard_normal(2) * cfg.scale_jitter)
        max_offset = math.sqrt(size.prod()) * cfg.center_jitter
        centre = np.array([x + w / 2, y + h / 2]) + (rng.random(2) - 0.5) * max_offset
        return np.array([centre[0] - size[0] / 2, centre[1] - size[1] / 2, size[0], size[1]])

    @staticmethod
    def _crop(image, box, factor, size, gt=None):
        """(patch, target xyxy normalised to the crop or None) with the runtime's crop."""
        window = crop_window(box, factor, size)
        patch = crop_and_resize(image, window, size)
        if gt is None:
            return patch, None
        scale = window.resize_factor / size
        x, y, w, h = gt
        target = np.array([(x - window.x1) * scale, (y - window.y1) * scale,
                           (x + w - window.x1) * scale, (y + h - window.y1) * scale])
        clipped = np.clip(target, 0, 1)
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            return patch, None
        return patch, target


class _AbsentFrame:
    """One frame without the target, with the box the search region is centred on."""

    def __init__(self, frame: str, box) -> None:
        self.frames, self.boxes = [frame], np.asarray([box], np.float64)


def _flip(target):
    if target is None:
        return None
    x1, y1, x2, y2 = target
    return np.array([1 - x2, y1, 1 - x1, y2])


def _imagenet():
    from edge.engines.model_meta import ModelMeta

    return Normalizer(ModelMeta(preset="train", template_size=1, search_size=1, search_factor=1.0, bins=1))
