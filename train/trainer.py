"""One training loop for every stage, readable in one pass.

AdamW (backbone at lr x 0.1), gradient clipping, StepLR, AMP on GPU, DDP when launched by torchrun
(RANK / WORLD_SIZE in the environment; gloo on CPU, NCCL on GPU), checkpoints in the official
layout (weights under 'net', loadable by `edge-track export`), resume from the last checkpoint,
a CSV log (and TensorBoard when installed), a progress line with ETA.
"""

from __future__ import annotations

import collections
import copy
import csv
import hashlib
import logging
import os
import time

import torch

from edge.errors import CheckpointError, ConfigError
from edge.io.progress import Progress
from train.config import TrainConfig
from train.data.pairs import PairConfig, PairDataset
from train.data.sources import load_videos
from train.distill.actors import BoxActor, FrozenStemActor, MixFormerBatchTeacher, NanoTrackBatchTeacher, ScoreActor
from train.distill.shrink import apply_elimination, elimination_factor, reduce_mlp, remove_layers
from train.distill.teachers import MixFormerV2Teacher, NanoTrackTeacher
from train.export.onnx import model_meta
from train.models.model import MixFormerV2, build_model
from train.models.presets import get_preset
from train.weights.checkpoint import save_checkpoint

log = logging.getLogger("train")
LAST = "checkpoint_last.pth.tar"
# Steps of stats ``train`` returns; OUTPUT/log.csv has every logged step of a run of any length.
HISTORY_KEPT = 1000


def _dist():
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when alone."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def param_checksum(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# -- what differs between stages -------------------------------------------------------------

class Stage:
    """One training stage: everything the common loop leaves to it.

    start_model: the model to train; teacher: built from the student before any QAT wrapping
    (None: no teacher); actor: freezes what the stage does not train and returns the objective;
    dataset: the pairs; begin_epoch: per-epoch changes to the model; final_model: the shape the
    result is saved in (before the MLP narrowing every stage may ask for).
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def start_model(self) -> MixFormerV2:
        if self.cfg.init and self.cfg.regrid_init:
            from train.weights.regrid import load_regridded

            return load_regridded(self.cfg.init, self.cfg.variant)[0]
        if self.cfg.init:
            from train.weights.checkpoint import load_model

            return load_model(self.cfg.init, self.cfg.variant or None)[0]
        return build_model(get_preset(self.cfg.variant), seed=self.cfg.seed)

    def teacher(self, student: MixFormerV2):
        return None

    def actor(self, model: MixFormerV2, teacher, device: torch.device):
        raise NotImplementedError

    def dataset(self, model: MixFormerV2, rank: int):
        return _pair_dataset(self.cfg, model, rank, keep_rgb=False)

    def begin_epoch(self, model: MixFormerV2, epoch: int) -> None:
        pass

    def final_model(self, model: MixFormerV2, epoch: int) -> MixFormerV2:
        return model


class Distill(Stage):
    """Stage 1: box losses against the ground truth, KL against a NanoTrack, MixFormerV2 or
    VitTrack teacher. With VitTrack the student starts as the teacher (its stems, position
    embeddings and blocks copied in: the paper's dense-to-sparse stage) unless ``init`` is set."""

    def start_model(self):
        if self.cfg.teacher.kind == "vittrack" and not self.cfg.init:
            from train.distill.vittrack_teacher import init_tokens_from_templates, student_from_teacher
            from train.models.vittrack import load_vittrack

            student = student_from_teacher(load_vittrack(self.cfg.teacher.path), get_preset(self.cfg.variant),
                                           self.cfg.seed)
            pairs = _pair_dataset(self.cfg, student, rank=0, keep_rgb=False)
            pairs.set_epoch(0)          # training draws from epochs 1.. : these pairs are not among them
            init_tokens_from_templates(student, torch.stack([pairs[i]["template"] for i in range(64)]))
            return student
        return super().start_model()

    def teacher(self, student):
        bins, kind = student.cfg.bins, self.cfg.teacher.kind
        if kind == "vittrack":
            from train.distill.vittrack_teacher import VitTrackTeacher

            return MixFormerBatchTeacher(VitTrackTeacher(self.cfg.teacher.path), bins)
        if kind == "nanotrack":
            return NanoTrackBatchTeacher(NanoTrackTeacher(self.cfg.teacher.path), bins)
        if kind == "mixformer":
            return MixFormerBatchTeacher(MixFormerV2Teacher(_load_teacher(self.cfg)), bins)
        return None

    def actor(self, model, teacher, device):
        return BoxActor(self.cfg.loss, teacher)

    def dataset(self, model, rank):
        # NanoTrack sees the raw crops, so the pairs keep them beside the normalised tensors.
        return _pair_dataset(self.cfg, model, rank, keep_rgb=self.cfg.teacher.kind == "nanotrack")


class _Eliminates:
    """Progressive layer elimination (``elimination.layers``): the layers fade out epoch by epoch
    and are removed from the saved model once their residual branches reach 0."""

    cfg: TrainConfig

    def begin_epoch(self, model, epoch):
        if self.cfg.elimination.layers:
            apply_elimination(model, self.cfg.elimination.layers, epoch, self.cfg.elimination.decay_epochs)

    def final_model(self, model, epoch):
        elim = self.cfg.elimination
        if not elim.layers:
            return model
        factor = elimination_factor(epoch, elim.decay_epochs)
        if factor == 0.0:
            return remove_layers(model.cpu(), elim.layers)
        log.warning("elimination not finished (factor %.3f at epoch %d): layers kept", factor, epoch)
        return model


class DeepToShallow(_Eliminates, Stage):
    """Stage 2: the chosen layers fade out (and are removed at the end), taught by the deep model."""

    def teacher(self, student):
        source = _load_teacher(self.cfg) if self.cfg.teacher.path else copy.deepcopy(student)
        return MixFormerBatchTeacher(MixFormerV2Teacher(source), student.cfg.bins)

    def actor(self, model, teacher, device):
        return BoxActor(self.cfg.loss, teacher, self.cfg.elimination.feature_pairs)


class Score(Stage):
    """Stage 3: only the score head trains, on positives and negatives."""

    def actor(self, model, teacher, device):
        for name, p in model.named_parameters():
            p.requires_grad_("score" in name)
        return ScoreActor(self.cfg.loss)


class FrozenStem(_Eliminates, Stage):
    """The default model: NanoTrack's CNN as a frozen stem, trained on pairs cached with its
    features and NanoTrack's dense answer. With ``elimination.layers`` the model also gets
    shallower (the cached stem features do not depend on the layers)."""

    def start_model(self):
        if self.cfg.init:
            return super().start_model()
        from train.models.stems import load_nanotrack_stem

        model = build_model(get_preset(self.cfg.variant), seed=self.cfg.seed)
        if model.cfg.stem != "nanotrack":
            raise ConfigError(f"stage frozen_stem needs a preset with the NanoTrack stem, not '{self.cfg.variant}'")
        stem_file = os.path.join(self.cfg.teacher.path, "nanotrack_backbone_sim.onnx")
        load_nanotrack_stem(model.backbone.patch_embed.stem, stem_file)
        return model

    def actor(self, model, teacher, device):
        for p in model.backbone.patch_embed.stem.parameters():
            p.requires_grad_(False)
        return FrozenStemActor(self.cfg.loss, model.cfg.embed_dim, model.cfg.search_grid ** 2).to(device)

    def dataset(self, model, rank):
        from train.data.pool_dataset import PoolDataset, load_or_build_pool

        cfg = self.cfg
        spec = pool_spec(cfg, model.cfg)
        samples = cfg.data.pool_samples or cfg.data.samples_per_epoch
        pool = load_or_build_pool(os.path.join(cfg.output, "pool.npz"), cfg.data.sources, spec, samples, cfg.seed,
                                  cfg.teacher.path, model.backbone.patch_embed.stem.eval())
        return PoolDataset(pool, cfg.data.samples_per_epoch, cfg.seed + 1000 * rank)


def pool_spec(cfg: TrainConfig, mc):
    """The frozen-stem pool's recipe from the config and the student's preset. (The jitters are
    the pool's own: its pairs are cached, so they follow the tracker's search, not a training
    augmentation schedule.)"""
    from train.data.feature_pool import PoolSpec

    return PoolSpec(template_size=mc.template_size, search_size=mc.search_size, template_factor=2.0,
                    search_factor=cfg.data.search_factor or mc.search_factor, bins=mc.bins,
                    negative_p=cfg.data.negative_p, log_aspect=cfg.data.log_aspect,
                    same_frame_negative_p=cfg.data.same_frame_negative_p)


STAGES: dict[str, type[Stage]] = {"distill": Distill, "deep_to_shallow": DeepToShallow, "score": Score,
                                  "frozen_stem": FrozenStem}


def _load_teacher(cfg: TrainConfig) -> MixFormerV2:
    from train.weights.checkpoint import load_model

    model, _ = load_model(cfg.teacher.path, cfg.teacher.variant or None)
    return model


def _pair_dataset(cfg: TrainConfig, model: MixFormerV2, rank: int, keep_rgb: bool) -> PairDataset:
    mc = model.cfg
    pair = PairConfig(template_size=mc.template_size, search_size=mc.search_size,
                      search_factor=cfg.data.search_factor or mc.search_factor, center_jitter=cfg.data.center_jitter,
                      scale_jitter=cfg.data.scale_jitter, max_gap=cfg.data.max_gap, negative_p=cfg.data.negative_p)
    sets = [(load_videos(src.path, src.kind, exclude=src.exclude), src.weight) for src in cfg.data.sources]
    return PairDataset(sets, pair, cfg.data.samples_per_epoch, seed=cfg.seed + 1000 * rank, meta=model_meta(model),
                       keep_rgb=keep_rgb)


# -- checkpoints -----------------------------------------------------------------------------

def load_resume_state(path: str) -> dict:
    """The dict ``save_checkpoint`` (train/weights/checkpoint.py) wrote; CheckpointError if it holds
    anything but plain data."""
    from train.weights.checkpoint import unpickling_reason, upgrade_keys

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot resume from {path}: {unpickling_reason(exc)}") from None
    if not (isinstance(state, dict) and {"net", "optimizer", "scheduler", "epoch"} <= set(state)):
        raise CheckpointError(f"cannot resume from {path}: not a training checkpoint of edge-track")
    return {**state, "net": upgrade_keys(state["net"])}


# -- the loop --------------------------------------------------------------------------------

def train(cfg: TrainConfig, *, resume: bool = False, max_steps: int | None = None) -> dict:
    """Run ``cfg``'s stage; returns history (the last HISTORY_KEPT steps' stats), epochs_run,
    steps, checksum and, on rank 0, checkpoint, preset (and onnx_int8 with QAT)."""
    # Set-up: processes, stage, model, objective, optimiser, data.
    rank, world, local_rank = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo")
    device = _device(cfg, local_rank)
    torch.manual_seed(cfg.seed)
    os.makedirs(cfg.output, exist_ok=True)

    stage = STAGES[cfg.stage](cfg)
    model = stage.start_model()
    teacher = stage.teacher(model)
    if cfg.qat:
        from train.export.qat import prepare_qat

        model = prepare_qat(model)
    actor = stage.actor(model, teacher, device)
    model.to(device).train()
    # The box stages leave the score head without gradient (and stage 3 everything but it).
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None,
                                                    find_unused_parameters=True) if world > 1 else model
    optimizer, trained = _optimizer(cfg, model, actor)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.optim.lr_drop_epoch, gamma=0.1)
    last_path = os.path.join(cfg.output, LAST)
    start_epoch = 1
    if resume and os.path.isfile(last_path):
        state = load_resume_state(last_path)
        model.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
        log.info("resumed from %s at epoch %d", last_path, start_epoch)
    dataset = stage.dataset(model, rank)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.optim.batch_size, shuffle=False, drop_last=True,
                                         num_workers=cfg.data.workers, persistent_workers=False)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    total = (cfg.optim.epochs - start_epoch + 1) * len(loader)
    logbook = _Logbook(cfg, rank, min(total, max_steps) if max_steps else total)

    # The loop: epochs of optimiser steps, a checkpoint after each epoch.
    step, epoch, start = 0, start_epoch - 1, time.monotonic()
    try:
        for epoch in range(start_epoch, cfg.optim.epochs + 1):
            dataset.set_epoch(epoch)
            stage.begin_epoch(model, epoch)
            for batch in loader:
                batch = {k: (v if k in ("template_rgb", "search_rgb") else v.to(device)) for k, v in batch.items()}
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                    loss, stats = actor(net, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.optim.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trained, cfg.optim.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                stats.update(epoch=epoch, step=step, lr=optimizer.param_groups[0]["lr"],
                             samples_per_s=step * cfg.optim.batch_size * world / (time.monotonic() - start))
                logbook.record(stats)
                if max_steps and step >= max_steps:
                    break
            scheduler.step()
            if rank == 0:
                save_checkpoint(last_path, model, epoch, cfg, optimizer, scheduler)
                if cfg.keep_epochs:
                    save_checkpoint(os.path.join(cfg.output, f"epoch{epoch}.pth.tar"), model, epoch, cfg)
            if max_steps and step >= max_steps:
                break
    finally:
        logbook.close()

    # The result: the final shape, one checksum per process, the final checkpoint (+ INT8 model).
    final = stage.final_model(model, epoch)
    if cfg.elimination.mlp_ratio and cfg.elimination.mlp_ratio < final.cfg.mlp_ratio:
        final = reduce_mlp(final.cpu(), cfg.elimination.mlp_ratio)
    result = {"history": list(logbook.history), "epochs_run": epoch - start_epoch + 1, "steps": step,
              "checksum": param_checksum(model)}
    if world > 1:
        with open(os.path.join(cfg.output, f"rank{rank}.checksum"), "w", encoding="ascii") as f:
            f.write(result["checksum"])
        torch.distributed.barrier()
    if rank == 0:
        result.update(_save_final(cfg, final, epoch))
    if world > 1:
        torch.distributed.destroy_process_group()
    return result


def _optimizer(cfg: TrainConfig, model: MixFormerV2, actor):
    """AdamW with the backbone at ``backbone_lr_scale`` x lr (the prediction tokens at
    ``token_lr_scale`` x lr when that is set); returns (optimizer, trained parameters)."""
    tokens = ("backbone.reg_tokens", "backbone.pos_embed_reg") if cfg.optim.token_lr_scale > 0 else ()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    backbone = [p for n, p in named if n.startswith("backbone.") and n not in tokens]
    token_params = [p for n, p in named if n in tokens]
    heads = [p for n, p in named if not n.startswith("backbone.")]
    heads += list(actor.parameters()) if hasattr(actor, "parameters") else []
    groups = [g for g in ({"params": heads, "lr": cfg.optim.lr},
                          {"params": backbone, "lr": cfg.optim.lr * cfg.optim.backbone_lr_scale},
                          {"params": token_params, "lr": cfg.optim.lr * cfg.optim.token_lr_scale}) if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    return optimizer, [p for g in groups for p in g["params"]]


def _save_final(cfg: TrainConfig, final: MixFormerV2, epoch: int) -> dict:
    """OUTPUT/final.pth.tar in the official layout (float weights, also after QAT, which adds
    OUTPUT/final-int8.onnx)."""
    path = os.path.join(cfg.output, "final.pth.tar")
    out = {"checkpoint": path, "preset": final.cfg.name}
    if cfg.qat:
        from train.export.qat import export_qat_onnx, float_state_dict

        plain = build_model(final.cfg)
        plain.load_state_dict(float_state_dict(final.cpu()))
        save_checkpoint(path, plain, epoch, cfg)
        out["onnx_int8"] = export_qat_onnx(final.cpu(), os.path.join(cfg.output, "final-int8.onnx")).path
    else:
        save_checkpoint(path, final.cpu(), epoch, cfg)
    return out


class _Logbook:
    """Per-step stats: the last HISTORY_KEPT in memory, every ``log_every``-th (and the first) in
    OUTPUT/log.csv and TensorBoard on rank 0, and the progress line."""

    def __init__(self, cfg: TrainConfig, rank: int, total_steps: int) -> None:
        self.every = cfg.log_every
        self.history: collections.deque = collections.deque(maxlen=HISTORY_KEPT)
        self.progress = Progress(total_steps, label=f"train {cfg.stage}")
        self.file = open(os.path.join(cfg.output, "log.csv"), "a", newline="", encoding="utf-8") if rank == 0 else None
        self.tensorboard = _tensorboard(cfg.output) if rank == 0 else None
        self.csv = None

    def record(self, stats: dict) -> None:
        self.history.append(stats)
        step = stats["step"]
        if self.file is not None and (step % self.every == 0 or step == 1):
            if self.csv is None:
                self.csv = csv.DictWriter(self.file, fieldnames=sorted(stats), extrasaction="ignore")
                if self.file.tell() == 0:
                    self.csv.writeheader()
            self.csv.writerow(stats)
            self.file.flush()
            if self.tensorboard is not None:
                for key, value in stats.items():
                    self.tensorboard.add_scalar(key, value, step)
        self.progress.advance()

    def close(self) -> None:
        self.progress.close()
        if self.file is not None:
            self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _tensorboard(output: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:   # tensorboard not installed: the CSV log is always there
        return None
    return SummaryWriter(os.path.join(output, "tensorboard"))
