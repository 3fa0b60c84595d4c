"""Dense-to-sparse on cached features: the VitTrack student's prediction tokens learn to read the
box from the frozen teacher's search tokens (issue 29).

The students whose prediction tokens ride inside VitTrack's single-head blocks (``vitstem``,
``vitstem4``) never learned to locate the target. Here the features stay the teacher's: ``cache``
runs the frozen teacher over training pairs (the student config's sampler and held-out list) and
keeps its search tokens after the last block (normed) and the one before, its edge distributions
and the truth; ``fit`` trains only the student's readout on them (four queries, one or more layers
of multi-head cross-attention, each with an MLP when asked: ``train.models.model.TokenReadout``;
the edge head ``DistributionBoxHead``) with the student's losses (KL to the teacher's edge
distributions + L1 to the truth); ``graft`` puts a head fitted on the last block's features into
the student ``--preset`` names (``vitstem-readout``: one layer, no MLP; ``vitstem-decoder``: two
layers with MLPs), whose blocks are VitTrack's, ready for the score stage and export. ``fit`` also
tells features from readout: if a readout reaches the teacher's own IoU on held pairs, the features
suffice.

    python -m train.distill.cached_readout cache --config CFG --pairs 16000 --seed 11 --out train.pt
    python -m train.distill.cached_readout cache --config CFG --pairs 3000 --seed 7 --out held.pt
    python -m train.distill.cached_readout fit --train train.pt --held held.pt --heads 4 --layer last --save ro.pt
    python -m train.distill.cached_readout graft --config CFG --readout ro.pt --out student.pth
    # the decoder student: fit ... --layers 2 --mlp-ratio 4 --cosine, graft ... --preset vitstem-decoder

The held pairs come from other draws of the same training videos (a learnability check, not an
evaluation: the validation split stays for choosing models). Needs the training extra.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge.errors import ModelError
from train.models.model import NUM_PRED_TOKENS, DistributionBoxHead, TokenReadout, read_tokens
from train.weights.checkpoint import upgrade_keys

SEARCH_TOKENS = 256
LAYERS = {"last": "final", "previous": "previous"}


class ProbeHead(nn.Module):
    """The student's prediction tokens, readout layers and box head, on cached features."""

    def __init__(self, dim: int, heads: int, bins: int, tokens: int, layers: int = 1, mlp_ratio: float = 0.0) -> None:
        super().__init__()
        self.heads, self.layers, self.mlp_ratio = heads, layers, mlp_ratio
        self.queries = nn.Parameter(torch.randn(1, NUM_PRED_TOKENS, dim) * 0.02)
        self.readout = nn.ModuleList(TokenReadout(dim, heads, tokens, mlp_ratio) for _ in range(layers))
        self.box_head = DistributionBoxHead(dim, bins, search_size=4 * bins)

    def forward(self, features: torch.Tensor):
        """-> (boxes (B, 4) cx, cy, w, h over the crop, edge logits (B, 4, bins))."""
        return self.box_head(read_tokens(self.readout, self.queries.expand(features.shape[0], -1, -1), features))

    def shape(self) -> dict:
        """What a saved head must say about itself: its weights fit any head count."""
        return {"heads": self.heads, "layers": self.layers, "mlp_ratio": self.mlp_ratio}

    @classmethod
    def from_saved(cls, saved: dict) -> "ProbeHead":
        state = upgrade_keys(saved["state"])
        head = cls(state["queries"].shape[-1], saved["heads"], state["box_head.layers.1.0.weight"].shape[0],
                   state["readout.0.pos"].shape[1], saved.get("layers", 1), saved.get("mlp_ratio", 0.0))
        head.load_state_dict(state)
        return head


def edge_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes given as (left, right, top, bottom) edges."""
    lo = torch.max(a[:, [0, 2]], b[:, [0, 2]])
    hi = torch.min(a[:, [1, 3]], b[:, [1, 3]])
    inter = (hi - lo).clamp(min=0).prod(1)
    area = lambda x: (x[:, 1] - x[:, 0]).clamp(min=0) * (x[:, 3] - x[:, 2]).clamp(min=0)  # noqa: E731
    return inter / (area(a) + area(b) - inter + 1e-9)


def expected_edges(probs: torch.Tensor) -> torch.Tensor:
    """(B, 4, bins) -> (B, 4) edges over the crop, bins at i / bins as the box head places them."""
    return (probs * torch.arange(probs.shape[-1], dtype=probs.dtype) / probs.shape[-1]).sum(-1)


def to_edges(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (left, right, top, bottom)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2], dim=-1)


def fit(train: dict, held: dict, layer: str, heads: int, steps: int, batch: int = 64, lr: float = 2e-3,
        seed: int = 0, log=print, layers: int = 1, mlp_ratio: float = 0.0, cosine: bool = False) -> dict:
    """Train a ProbeHead on cached features (with ``cosine`` the rate falls on a cosine to 0);
    -> {"held_iou", "teacher_iou", "train_iou", "head"}."""
    torch.manual_seed(seed)
    key = LAYERS[layer]
    bins = train["probs"].shape[-1]
    model = ProbeHead(train[key].shape[-1], heads, bins, train[key].shape[1], layers, mlp_ratio)
    opt = torch.optim.AdamW(model.parameters(), lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / steps)) if cosine else 1.0)

    def run(d, idx):
        boxes, logits = model(d[key][idx].float())
        edges = to_edges(boxes)
        truth = d["truth"][idx][:, [0, 2, 1, 3]]                                # xyxy -> l, r, t, b
        loss = F.kl_div(logits.log_softmax(-1), d["probs"][idx].float().clamp_min(1e-8), reduction="batchmean")
        return loss + 5 * F.l1_loss(edges, truth), edge_iou(edges, truth).mean()

    n = train[key].shape[0]
    g = torch.Generator().manual_seed(seed)
    train_iou = 0.0
    for step in range(steps):
        loss, iou = run(train, torch.randint(0, n, (batch,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        train_iou = 0.98 * train_iou + 0.02 * float(iou.detach()) if step else float(iou.detach())
        if log and (step % 500 == 0 or step == steps - 1):
            log(f"step {step}: loss {float(loss.detach()):.3f}, train IoU {train_iou:.3f}")
    with torch.no_grad():
        _, held_iou = run(held, torch.arange(held[key].shape[0]))
    truth = held["truth"][:, [0, 2, 1, 3]]
    teacher = edge_iou(expected_edges(held["probs"].float()), truth).mean()
    return {"held_iou": float(held_iou), "teacher_iou": float(teacher), "train_iou": train_iou, "head": model}


def graft(teacher_path: str, head: ProbeHead, preset_name: str = "vitstem-readout"):
    """The student ``preset_name`` (a VitTrack student with a readout) started from VitTrack (its
    ONNX file), with a readout fitted on the teacher's last-block features (``fit --layer last``)."""
    from train.distill.vittrack_teacher import student_from_teacher
    from train.models.presets import get_preset
    from train.models.vittrack import load_vittrack

    preset = get_preset(preset_name)
    wanted = {"heads": preset.readout_heads, "layers": preset.readout_layers, "mlp_ratio": preset.readout_mlp_ratio}
    if head.shape() != wanted:   # the weights fit any head count: only the file can tell
        fitted = ", ".join(f"{k} {v:g}" for k, v in head.shape().items())
        raise ModelError(f"the readout was fitted with {fitted}; {preset.name} reads with "
                         + ", ".join(f"{k} {v:g}" for k, v in wanted.items()) + ": fit again to match")
    student = student_from_teacher(load_vittrack(teacher_path), preset)
    with torch.no_grad():
        student.backbone.reg_tokens.copy_(head.queries)
        student.backbone.pos_embed_reg.zero_()
    student.readout.load_state_dict(head.readout.state_dict())
    student.box_head.load_state_dict(head.box_head.state_dict())
    return student


@torch.no_grad()
def cache(config: str, pairs: int, seed: int) -> dict:
    """The frozen teacher's final (normed) and previous-block search features, its edge
    distributions and the truth for ``pairs`` training pairs drawn as the student's config draws."""
    from train.config import load_train_config
    from train.distill.vittrack_teacher import VitTrackTeacher, map_edge_probs, student_from_teacher
    from train.models.presets import get_preset
    from train.trainer import _pair_dataset

    cfg = load_train_config(config)
    teacher = VitTrackTeacher(cfg.teacher.path)
    preset = get_preset(cfg.variant)
    cfg.data.samples_per_epoch = pairs
    data = _pair_dataset(cfg, student_from_teacher(teacher.model, preset), 0, keep_rgb=False)
    data.seed = seed
    out = {"final": [], "previous": [], "probs": [], "truth": []}
    for batch in torch.utils.data.DataLoader(data, batch_size=32):
        t = teacher.model(batch["template"], batch["search"])
        out["final"].append(teacher.model.norm(t.features[-1])[:, -SEARCH_TOKENS:].half())
        out["previous"].append(t.features[-2][:, -SEARCH_TOKENS:].half())
        out["probs"].append(map_edge_probs(t.score, t.size, t.offset, preset.bins).half())
        out["truth"].append(batch["target_xyxy"])
    return {k: torch.cat(v) for k, v in out.items()}


def _load_caches(paths: str) -> dict:
    """One cache, or several (comma-separated) joined: more pairs without caching again."""
    parts = [torch.load(p) for p in paths.split(",")]
    return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.distill.cached_readout")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="cache the teacher's features for training pairs")
    c.add_argument("--config", required=True, help="the student's training config (its data and teacher)")
    c.add_argument("--pairs", type=int, default=16000)
    c.add_argument("--seed", type=int, default=11)
    c.add_argument("--out", required=True)
    f = sub.add_parser("fit", help="train a readout on cached features and report held IoU")
    f.add_argument("--train", required=True, help="a cache file, or several comma-separated")
    f.add_argument("--held", required=True)
    f.add_argument("--layer", choices=sorted(LAYERS), default="last")
    f.add_argument("--heads", type=int, default=4, help="readout heads (the students vitstem-readout and "
                                                        "vitstem-decoder have 4)")
    f.add_argument("--layers", type=int, default=1, help="readout layers (vitstem-decoder: 2)")
    f.add_argument("--mlp-ratio", type=float, default=0.0, help="each layer's MLP ratio, 0: none (vitstem-decoder: 4)")
    f.add_argument("--steps", type=int, default=6000)
    f.add_argument("--cosine", action="store_true", help="let the rate fall on a cosine to 0 (default: constant)")
    f.add_argument("--save", default="", help="write the fitted head here (for graft)")
    g = sub.add_parser("graft", help="a VitTrack student with a fitted head, as a state dict")
    g.add_argument("--config", required=True, help="the student's training config (its teacher)")
    g.add_argument("--preset", default="vitstem-readout", help="the student: vitstem-readout (default) or "
                                                               "vitstem-decoder")
    g.add_argument("--readout", required=True, help="a head written by fit --save (last-block features)")
    g.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "cache":
        torch.save(cache(args.config, args.pairs, args.seed), args.out)
        return 0
    if args.command == "graft":
        from train.config import load_train_config

        head = ProbeHead.from_saved(torch.load(args.readout))
        torch.save(graft(load_train_config(args.config).teacher.path, head, args.preset).state_dict(), args.out)
        return 0
    r = fit(_load_caches(args.train), _load_caches(args.held), args.layer, args.heads, args.steps,
            layers=args.layers, mlp_ratio=args.mlp_ratio, cosine=args.cosine)
    if args.save:
        torch.save({**r["head"].shape(), "state": r["head"].state_dict()}, args.save)
    print(f"held IoU {r['held_iou']:.3f} (teacher's own maps {r['teacher_iou']:.3f}), "
          f"{args.layer} features, {args.layers} layer(s) of {args.heads} head(s), MLP ratio {args.mlp_ratio:g}, "
          f"{args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
