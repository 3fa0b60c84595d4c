"""Multiply-accumulates of one tracking frame, counted from the architecture (no profiler).

Per layer and token: QKV (3 D^2), projection (D^2), MLP (2 r D^2); attention matmuls QK^T and AV
cost 2 * D per (query, key) pair: template queries see the 2 Nt template keys, search and
prediction-token queries see all keys. The template cache removes the template tokens from the
per-frame count (they are paid once per template update instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from train.models.model import NUM_PRED_TOKENS
from train.models.presets import Architecture


@dataclass(frozen=True)
class FrameMacs:
    patch_embed: float
    linear: float
    attention: float
    heads: float

    @property
    def total(self) -> float:
        return self.patch_embed + self.linear + self.attention + self.heads

    @property
    def flops(self) -> float:
        return 2.0 * self.total


def frame_macs(cfg: Architecture, cached: bool) -> FrameMacs:
    D, L, r = cfg.embed_dim, cfg.depth, cfg.mlp_ratio
    m = 2 * cfg.template_grid ** 2                 # both templates
    s = cfg.search_grid ** 2 + NUM_PRED_TOKENS      # search + prediction tokens
    patch = D * 3 * cfg.patch_size ** 2             # MACs per patch
    if cfg.stem == "nanotrack":                      # CNN stem + LayerNorm/Linear(48 -> D) per token
        from train.models.stems import STEM_CHANNELS, stem_macs

        search_embed = stem_macs(cfg.search_size) + cfg.search_grid ** 2 * STEM_CHANNELS * D
        template_embed = 2 * (stem_macs(cfg.template_size) + cfg.template_grid ** 2 * STEM_CHANNELS * D)
    elif cfg.stem == "vittrack":                     # VitTrack's conv stems, no projection
        from train.models.vittrack import stem_macs as vit_stem_macs

        search_embed, template_embed = vit_stem_macs(cfg.search_size), 2 * vit_stem_macs(cfg.template_size)
    else:
        search_embed = cfg.search_grid ** 2 * patch
        template_embed = m * patch
    per_token_linear = (4 + 2 * r) * D * D
    search_attention = s * (m + s) * 2 * D
    template_attention = m * m * 2 * D
    heads = NUM_PRED_TOKENS * (D * D + D * cfg.bins) + NUM_PRED_TOKENS * (D * D + D)
    if cached:
        return FrameMacs(patch_embed=search_embed, linear=L * s * per_token_linear,
                         attention=L * search_attention, heads=heads)
    return FrameMacs(patch_embed=search_embed + template_embed, linear=L * (s + m) * per_token_linear,
                     attention=L * (search_attention + template_attention), heads=heads)
