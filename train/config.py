"""Training configuration: one typed YAML per stage (examples in train/configs/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge.config import build_dataclass, num
from edge.errors import ConfigError


@dataclass
class DataSource:
    path: str = ""
    kind: Literal["auto", "otb", "lasot", "got10k", "trackingnet", "coco", "video", "images", "pseudo_video"] = "auto"
    weight: float = num(1.0, 0.0, 1000.0)
    # Sequence names left out of training (a validation split kept in the same folder).
    exclude: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    sources: list[DataSource] = field(default_factory=list)
    samples_per_epoch: int = num(1000, 1, 10_000_000)
    workers: int = num(0, 0, 64)
    search_factor: float = num(0.0, 0.0, 20.0)          # 0: the preset's
    center_jitter: float = num(4.5, 0.0, 20.0)
    scale_jitter: float = num(0.5, 0.0, 2.0)
    max_gap: int = num(200, 1, 100000)
    negative_p: float = num(0.0, 0.0, 1.0)
    # Stage frozen_stem: pairs computed once into OUTPUT/pool.npz (0: samples_per_epoch of them).
    pool_samples: int = num(0, 0, 10_000_000)
    log_aspect: float = num(0.6, 0.0, 2.0)               # made-up boxes: aspect exp(U(-a, a))
    same_frame_negative_p: float = num(0.0, 0.0, 1.0)    # negatives cut from the search frame, away from the target


@dataclass
class TeacherConfig:
    kind: Literal["none", "nanotrack", "mixformer", "vittrack"] = "none"
    # NanoTrack model folder, a MixFormerV2 checkpoint, or VitTrack's ONNX file (the student then
    # starts as VitTrack, unless init is set)
    path: str = ""
    variant: str = ""


@dataclass
class LossConfig:
    iou: Literal["ciou", "giou"] = "ciou"
    iou_weight: float = num(2.0, 0.0, 100.0)
    l1_weight: float = num(5.0, 0.0, 100.0)
    kl_weight: float = num(5.0, 0.0, 100.0)
    feature_weight: float = num(0.2, 0.0, 100.0)
    score_weight: float = num(1.0, 0.0, 100.0)
    dense_weight: float = num(1.0, 0.0, 100.0)     # frozen_stem: search tokens vs the teacher's score map


@dataclass
class OptimConfig:
    lr: float = num(4e-4, 0.0, 1.0)
    weight_decay: float = num(1e-4, 0.0, 1.0)
    backbone_lr_scale: float = num(0.1, 0.0, 10.0)
    # > 0: the prediction tokens (backbone.reg_tokens, pos_embed_reg) train at lr x this instead of
    # the backbone's rate: in a student started from another tracker they are the new part.
    token_lr_scale: float = num(0.0, 0.0, 10.0)
    grad_clip: float = num(0.1, 0.0, 1000.0)
    epochs: int = num(500, 1, 100000)
    lr_drop_epoch: int = num(400, 1, 100000)
    batch_size: int = num(32, 1, 4096)


@dataclass
class EliminationConfig:
    layers: list = field(default_factory=list)          # layers to fade out and remove (stage 2)
    decay_epochs: int = num(40, 2, 100000)
    feature_pairs: list = field(default_factory=list)   # [[student layer, teacher layer], ...]
    mlp_ratio: float = num(0.0, 0.0, 16.0)              # > 0: narrow the MLPs of the result


@dataclass
class TrainConfig:
    stage: Literal["distill", "deep_to_shallow", "score", "frozen_stem"] = "distill"
    variant: str = "tiny"
    init: str = ""                     # checkpoint to start from (stage 2 and 3 need one)
    # init's weights are of another search size at the same scale: lay them out for `variant`
    # (train/weights/regrid.py) instead of refusing the shape mismatch.
    regrid_init: bool = False
    output: str = "runs/train"
    seed: int = num(0, 0, 2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True                   # mixed precision on GPU
    log_every: int = num(10, 1, 100000)
    # Also keep every epoch's weights (OUTPUT/epochN.pth.tar, no optimizer state): the epoch is
    # then chosen on the validation split, not fixed in advance.
    keep_epochs: bool = False
    qat: bool = False                  # fake-quant finetuning; also writes OUTPUT/final-int8.onnx
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    elimination: EliminationConfig = field(default_factory=EliminationConfig)


def load_train_config(path: str) -> TrainConfig:
    from edge.io.safe_yaml import read_yaml

    raw = read_yaml(path, "training config")
    try:
        cfg = build_dataclass(TrainConfig, raw or {}, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not cfg.data.sources:
        raise ConfigError(f"{path}: data.sources is empty (give at least one dataset folder)")
    if cfg.stage == "frozen_stem" and cfg.teacher.kind != "nanotrack":
        raise ConfigError(f"{path}: stage frozen_stem needs teacher.kind nanotrack (its backbone is the stem)")
    if cfg.regrid_init and not cfg.init:
        raise ConfigError(f"{path}: regrid_init lays out the init checkpoint's weights: set init")
    if cfg.stage in ("deep_to_shallow", "score") and not cfg.init:
        raise ConfigError(f"{path}: stage {cfg.stage} starts from a trained model: set init")
    for pair in cfg.elimination.feature_pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) for v in pair)):
            raise ConfigError(f"{path}: elimination.feature_pairs must be [[student, teacher], ...] layer numbers")
    return cfg
