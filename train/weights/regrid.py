"""Carry trained weights to a preset with a smaller (or larger) search crop at the same scale.

A search crop of 224 px over 3.5x the target has the pixels per target of 256 px over 4x, with
0.77x the tokens: the stem and every layer do 0.77x the work, and fewer distractors fit in the
window. Only two kinds of weights depend on the grid: the fixed sin-cos position tables
(recomputed for the new grid, exactly as the model builds them) and the box head's last layer,
one row per bin. Bins cover the crop at a fixed pixel stride (bin i starts at i * stride px), so
with the same stride the first ``bins`` rows keep their meaning and the rest are dropped (or, for
a larger crop, nothing is invented: that is refused).
"""

from __future__ import annotations

import torch

from edge.errors import CheckpointError
from train.models.model import MixFormerV2, build_model, sincos_pos_embed_2d
from train.models.presets import Architecture, get_preset

POS_TABLES = {"backbone.pos_embed_s": "search_grid", "backbone.pos_embed_t": "template_grid"}
# The box head's last Linear and its LayerNorm: one entry per bin.
BIN_KEYS = ("box_head.layers.1.0.weight", "box_head.layers.1.0.bias",
            "box_head.layers.1.1.weight", "box_head.layers.1.1.bias")


def source_grid(state: dict[str, torch.Tensor], key: str = "backbone.pos_embed_s") -> int:
    tokens = state[key].shape[1]
    grid = int(round(tokens ** 0.5))
    if grid * grid != tokens:
        raise CheckpointError(f"{key} has {tokens} tokens: not a square grid")
    return grid


def regrid_state_dict(state: dict[str, torch.Tensor], cfg: Architecture) -> dict[str, torch.Tensor]:
    """``state`` (any search grid) -> the same weights laid out for ``cfg``'s grids and bins."""
    out = dict(state)
    for key, attr in POS_TABLES.items():
        grid = getattr(cfg, attr)
        if key in out and out[key].shape[1] != grid * grid:
            out[key] = sincos_pos_embed_2d(cfg.embed_dim, grid)[None]
    src_bins = state[BIN_KEYS[1]].shape[0]
    src_stride = source_grid(state) * cfg.patch_size / src_bins
    dst_stride = cfg.search_size / cfg.bins
    if abs(src_stride - dst_stride) > 1e-6:
        raise CheckpointError(f"bins of {src_stride:g} px cannot become bins of {dst_stride:g} px "
                              f"(variant {cfg.name}): regridding keeps the pixel stride")
    if cfg.bins > src_bins:
        raise CheckpointError(f"variant {cfg.name} needs {cfg.bins} bins, the weights have {src_bins}")
    for key in BIN_KEYS:
        out[key] = state[key][:cfg.bins].clone()
    return out


def load_regridded(path: str, variant: str) -> tuple[MixFormerV2, str]:
    """Weights of ``path`` (another search size) in a model of preset ``variant``."""
    from train.weights.checkpoint import _read, check_state_dict, file_sha256

    cfg = get_preset(variant)
    state, _ = _read(path)
    state = regrid_state_dict(state, cfg)
    check_state_dict(state, cfg, path)
    model = build_model(cfg)
    model.load_state_dict(state, strict=True)
    return model.eval(), file_sha256(path)
