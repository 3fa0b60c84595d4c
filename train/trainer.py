"""One training loop for every stage, readable in one pass.

AdamW (backbone at lr x 0.1), gradient clipping, StepLR, AMP on GPU, DDP when launched by torchrun
(RANK / WORLD_SIZE in the environment; gloo on CPU, NCCL on GPU), checkpoints in the official
layout (weights under 'net', loadable by `edge-track export`), resume from the last checkpoint,
a CSV log (and TensorBoard when installed), a progress line with ETA.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import logging
import os
import time

import torch

from edge.progress import Progress
from edge.errors import ConfigError
from train.actors import BoxActor, FrozenStemActor, MixFormerBatchTeacher, NanoTrackBatchTeacher, ScoreActor
from train.config import TrainConfig
from train.data.pairs import PairConfig, PairDataset
from train.data.sources import load_videos
from train.export import model_meta
from train.model import MixFormerV2, build_model
from train.presets import get_preset
from train.shrink import apply_elimination, elimination_factor, reduce_mlp, remove_layers
from train.teachers import MixFormerV2Teacher, NanoTrackTeacher

log = logging.getLogger("train")
LAST = "checkpoint_last.pth.tar"


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


def _load_start(cfg: TrainConfig) -> MixFormerV2:
    if cfg.stage == "frozen_stem" and not cfg.init:
        from train.stems import load_nanotrack_stem

        model = build_model(get_preset(cfg.variant), seed=cfg.seed)
        if model.cfg.stem != "nanotrack":
            raise ConfigError(f"stage frozen_stem needs a preset with the NanoTrack stem, not '{cfg.variant}'")
        load_nanotrack_stem(model.backbone.patch_embed.stem, os.path.join(cfg.teacher.path, "nanotrack_backbone_sim.onnx"))
        return model
    if cfg.init:
        from train.checkpoint import load_model

        model, _ = load_model(cfg.init, cfg.variant or None)
        return model
    return build_model(get_preset(cfg.variant), seed=cfg.seed)


def _teacher(cfg: TrainConfig, student: MixFormerV2):
    bins = student.cfg.bins
    if cfg.stage == "deep_to_shallow":
        source = copy.deepcopy(student) if not cfg.teacher.path else _load_teacher(cfg)
        return MixFormerBatchTeacher(MixFormerV2Teacher(source), bins)
    if cfg.teacher.kind == "nanotrack":
        return NanoTrackBatchTeacher(NanoTrackTeacher(cfg.teacher.path), bins)
    if cfg.teacher.kind == "mixformer":
        return MixFormerBatchTeacher(MixFormerV2Teacher(_load_teacher(cfg)), bins)
    return None


def _load_teacher(cfg: TrainConfig) -> MixFormerV2:
    from train.checkpoint import load_model

    model, _ = load_model(cfg.teacher.path, cfg.teacher.variant or None)
    return model


def _dataset(cfg: TrainConfig, model: MixFormerV2, rank: int, keep_rgb: bool) -> PairDataset:
    mc = model.cfg
    pair = PairConfig(template_size=mc.template_size, search_size=mc.search_size,
                      search_factor=cfg.data.search_factor or mc.search_factor, center_jitter=cfg.data.center_jitter,
                      scale_jitter=cfg.data.scale_jitter, max_gap=cfg.data.max_gap, negative_p=cfg.data.negative_p)
    sets = [(load_videos(src.path, src.kind), src.weight) for src in cfg.data.sources]
    return PairDataset(sets, pair, cfg.data.samples_per_epoch, seed=cfg.seed + 1000 * rank, meta=model_meta(model),
                       keep_rgb=keep_rgb)


def _pool_dataset(cfg: TrainConfig, model: MixFormerV2, rank: int):
    from train.data.feature_pool import PoolSpec
    from train.data.pool_dataset import PoolDataset, load_or_build_pool

    mc = model.cfg
    spec = PoolSpec(template_size=mc.template_size, search_size=mc.search_size, template_factor=2.0,
                    search_factor=cfg.data.search_factor or mc.search_factor, bins=mc.bins,
                    negative_p=cfg.data.negative_p, log_aspect=cfg.data.log_aspect,
                    same_frame_negative_p=cfg.data.same_frame_negative_p)
    samples = cfg.data.pool_samples or cfg.data.samples_per_epoch
    pool = load_or_build_pool(os.path.join(cfg.output, "pool.npz"), cfg.data.sources, spec, samples, cfg.seed,
                              cfg.teacher.path, model.backbone.patch_embed.stem.eval())
    return PoolDataset(pool, cfg.data.samples_per_epoch, cfg.seed + 1000 * rank)


def save_checkpoint(path: str, model: MixFormerV2, epoch: int, cfg: TrainConfig, optimizer=None, scheduler=None) -> None:
    tmp = path + ".part"
    torch.save({"net": model.state_dict(), "epoch": epoch, "net_type": "mixformer2_vit_online",
                "preset": model.cfg.name, "model_config": dataclasses.asdict(model.cfg),
                "config": dataclasses.asdict(cfg),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None}, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, *, resume: bool = False, max_steps: int | None = None) -> dict:
    rank, world, local_rank = _dist()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo")
    device = _device(cfg, local_rank)
    torch.manual_seed(cfg.seed)
    os.makedirs(cfg.output, exist_ok=True)

    model = _load_start(cfg)
    teacher = _teacher(cfg, model) if cfg.stage not in ("score", "frozen_stem") else None
    if cfg.qat:
        from train.qat import prepare_qat

        model = prepare_qat(model)
    if cfg.stage == "score":
        for name, p in model.named_parameters():
            p.requires_grad_("score" in name)
        actor = ScoreActor(cfg.loss)
    elif cfg.stage == "frozen_stem":
        for p in model.backbone.patch_embed.stem.parameters():
            p.requires_grad_(False)
        actor = FrozenStemActor(cfg.loss, model.cfg.embed_dim, model.cfg.search_grid ** 2).to(device)
    else:
        actor = BoxActor(cfg.loss, teacher, cfg.elimination.feature_pairs if cfg.stage == "deep_to_shallow" else ())
    model.to(device).train()
    # The box stages leave the score head without gradient (and stage 3 everything but it).
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None,
                                                    find_unused_parameters=True) if world > 1 else model

    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.") and p.requires_grad]
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
    heads += list(actor.parameters()) if hasattr(actor, "parameters") else []
    groups = [g for g in ({"params": heads, "lr": cfg.optim.lr},
                          {"params": backbone, "lr": cfg.optim.lr * cfg.optim.backbone_lr_scale}) if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.optim.lr_drop_epoch, gamma=0.1)
    start_epoch = 1
    last_path = os.path.join(cfg.output, LAST)
    if resume and os.path.isfile(last_path):
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
        log.info("resumed from %s at epoch %d", last_path, start_epoch)

    if cfg.stage == "frozen_stem":
        dataset = _pool_dataset(cfg, model, rank)
    else:
        dataset = _dataset(cfg, model, rank, keep_rgb=cfg.teacher.kind == "nanotrack" and cfg.stage == "distill")
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.optim.batch_size, shuffle=False, drop_last=True,
                                         num_workers=cfg.data.workers, persistent_workers=False)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    writer = _tensorboard(cfg.output) if rank == 0 else None
    log_file = open(os.path.join(cfg.output, "log.csv"), "a", newline="", encoding="utf-8") if rank == 0 else None
    csv_writer = None
    history = []
    steps_per_epoch = len(loader)
    total = (cfg.optim.epochs - start_epoch + 1) * steps_per_epoch
    progress = Progress(min(total, max_steps) if max_steps else total, label=f"train {cfg.stage}")
    step = 0
    start = time.monotonic()
    try:
        for epoch in range(start_epoch, cfg.optim.epochs + 1):
            dataset.set_epoch(epoch)
            if cfg.stage == "deep_to_shallow" and cfg.elimination.layers:
                apply_elimination(model, cfg.elimination.layers, epoch, cfg.elimination.decay_epochs)
            for batch in loader:
                batch = {k: (v.to(device) if k not in ("template_rgb", "search_rgb") else v) for k, v in batch.items()}
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                    loss, stats = actor(net, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.optim.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], cfg.optim.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                stats.update(epoch=epoch, step=step, lr=optimizer.param_groups[0]["lr"],
                             samples_per_s=step * cfg.optim.batch_size * world / (time.monotonic() - start))
                history.append(stats)
                if rank == 0 and (step % cfg.log_every == 0 or step == 1):
                    if csv_writer is None:
                        csv_writer = csv.DictWriter(log_file, fieldnames=sorted(stats), extrasaction="ignore")
                        if log_file.tell() == 0:
                            csv_writer.writeheader()
                    csv_writer.writerow(stats)
                    log_file.flush()
                    if writer is not None:
                        for key, value in stats.items():
                            writer.add_scalar(key, value, step)
                progress.advance()
                if max_steps and step >= max_steps:
                    break
            scheduler.step()
            if rank == 0:
                save_checkpoint(last_path, model, epoch, cfg, optimizer, scheduler)
            if max_steps and step >= max_steps:
                break
    finally:
        progress.close()
        if log_file is not None:
            log_file.close()
        if writer is not None:
            writer.close()
    final = model
    if cfg.stage == "deep_to_shallow" and cfg.elimination.layers:
        if elimination_factor(epoch, cfg.elimination.decay_epochs) == 0.0:
            final = remove_layers(model.cpu(), cfg.elimination.layers)
        else:
            log.warning("elimination not finished (factor %.3f at epoch %d): layers kept",
                        elimination_factor(epoch, cfg.elimination.decay_epochs), epoch)
    if cfg.elimination.mlp_ratio and cfg.elimination.mlp_ratio < final.cfg.mlp_ratio:
        final = reduce_mlp(final.cpu(), cfg.elimination.mlp_ratio)
    result = {"history": history, "epochs_run": epoch - start_epoch + 1, "steps": step,
              "checksum": param_checksum(model)}
    if world > 1:
        with open(os.path.join(cfg.output, f"rank{rank}.checksum"), "w", encoding="ascii") as f:
            f.write(result["checksum"])
        torch.distributed.barrier()
    if rank == 0:
        final_path = os.path.join(cfg.output, "final.pth.tar")
        if cfg.qat:
            from train.qat import export_qat_onnx, float_state_dict

            plain = build_model(final.cfg)
            plain.load_state_dict(float_state_dict(final.cpu()))
            save_checkpoint(final_path, plain, epoch, cfg)
            result["onnx_int8"] = export_qat_onnx(final.cpu(), os.path.join(cfg.output, "final-int8.onnx")).path
        else:
            save_checkpoint(final_path, final.cpu(), epoch, cfg)
        result["checkpoint"] = final_path
        result["preset"] = final.cfg.name
    if world > 1:
        torch.distributed.destroy_process_group()
    return result


def _tensorboard(output: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:   # tensorboard not installed: the CSV log is always there
        return None
    return SummaryWriter(os.path.join(output, "tensorboard"))
