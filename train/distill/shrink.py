"""Deep-to-shallow and wide-to-narrow: turning a trained MixFormerV2 into a smaller one.

Progressive elimination (spec section 5, stage 2.1): the layers to remove are frozen and both of
their residual branches are scaled by r(e) = 0.5 (1 + cos(pi min(e + 1, E) / E)) for the 1-based
epoch e, which reaches exactly 0 at e = E - 1; from then on those layers are identities and
``remove_layers`` drops them and renumbers the rest, giving a shallower checkpoint that computes
the same function. ``reduce_mlp`` narrows every MLP to a smaller ratio, keeping the hidden units
that matter most (|fc1 row| x |fc2 column|), and ``resize_inputs`` regenerates the fixed position
tables for other template/search sizes, which together turn a B-like model into an S-like one.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch

from train.models.model import MixFormerV2, build_model, sincos_pos_embed_2d
from train.models.presets import Architecture


def elimination_factor(epoch: int, decay_epochs: int = 40) -> float:
    """r(e) for the 1-based epoch e: 0.994 at e = 1 (E = 40), exactly 0 from e = E - 1."""
    step = min(epoch + 1, decay_epochs)
    if step >= decay_epochs:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * step / decay_epochs))


def apply_elimination(model: MixFormerV2, layers, epoch: int, decay_epochs: int = 40) -> float:
    """Freeze ``layers`` and scale their residual branches for this epoch; returns the factor."""
    factor = elimination_factor(epoch, decay_epochs)
    for i in layers:
        block = model.backbone.blocks[i]
        block.residual_scale = factor
        for p in block.parameters():
            p.requires_grad_(False)
    return factor


def remove_layers(model: MixFormerV2, layers) -> MixFormerV2:
    """A shallower model without ``layers``; the others renumbered 0.. in their original order."""
    drop = set(int(i) for i in layers)
    depth = model.cfg.depth
    if not drop or min(drop) < 0 or max(drop) >= depth or len(drop) >= depth:
        raise ValueError(f"layers to remove must be a non-empty proper subset of 0..{depth - 1}, got {sorted(drop)}")
    keep = [i for i in range(depth) if i not in drop]
    cfg = dataclasses.replace(model.cfg, depth=len(keep), name=f"{model.cfg.name}-d{len(keep)}")
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("backbone.blocks."):
            index = int(key.split(".")[2])
            if index in drop:
                continue
            key = key.replace(f"backbone.blocks.{index}.", f"backbone.blocks.{keep.index(index)}.", 1)
        state[key] = value.clone()
    smaller = build_model(cfg)
    smaller.load_state_dict(state, strict=True)
    return smaller.eval()


def reduce_mlp(model: MixFormerV2, mlp_ratio: float) -> MixFormerV2:
    """Every block's MLP narrowed to ``mlp_ratio`` x width, keeping its most important hidden units."""
    D = model.cfg.embed_dim
    hidden = int(D * mlp_ratio)
    old_hidden = int(D * model.cfg.mlp_ratio)
    if not 0 < hidden <= old_hidden:
        raise ValueError(f"mlp_ratio must shrink the MLP (now {model.cfg.mlp_ratio:g}), got {mlp_ratio:g}")
    cfg = dataclasses.replace(model.cfg, mlp_ratio=mlp_ratio, name=f"{model.cfg.name}-mlp{mlp_ratio:g}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for i, block in enumerate(model.backbone.blocks):
        fc1_w, fc2_w = block.mlp.fc1.weight.detach(), block.mlp.fc2.weight.detach()    # (H, D), (D, H)
        importance = fc1_w.norm(dim=1) * fc2_w.norm(dim=0)                              # (H,)
        keep = torch.sort(torch.topk(importance, hidden).indices).values
        prefix = f"backbone.blocks.{i}.mlp."
        state[prefix + "fc1.weight"] = fc1_w[keep].clone()
        state[prefix + "fc1.bias"] = block.mlp.fc1.bias.detach()[keep].clone()
        state[prefix + "fc2.weight"] = fc2_w[:, keep].clone()
    narrower = build_model(cfg)
    narrower.load_state_dict(state, strict=True)
    return narrower.eval()


def resize_inputs(model: MixFormerV2, template_size: int, search_size: int) -> MixFormerV2:
    """The same weights for other input sizes: the position tables are fixed sin-cos, regenerated.

    The box head's bins keep their count; their pixel stride follows the new search size.
    """
    cfg = dataclasses.replace(model.cfg, template_size=template_size, search_size=search_size,
                              name=f"{model.cfg.name}-{template_size}-{search_size}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["backbone.pos_embed_t"] = sincos_pos_embed_2d(cfg.embed_dim, cfg.template_grid)[None]
    state["backbone.pos_embed_s"] = sincos_pos_embed_2d(cfg.embed_dim, cfg.search_grid)[None]
    resized = build_model(cfg)
    resized.load_state_dict(state, strict=True)
    return resized.eval()


def as_preset(model: MixFormerV2, cfg: Architecture) -> MixFormerV2:
    """Rename a shrunk model to a preset with the same shapes (e.g. B reduced to S's shapes -> 'S')."""
    other = build_model(cfg)
    other.load_state_dict(copy.deepcopy(model.state_dict()), strict=True)   # raises if shapes differ
    return other.eval()
