"""MixFormerV2: a one-stream ViT tracker with prediction tokens (spec section 2).

Parameter names and shapes equal the official checkpoints (``backbone.*``, ``box_head.*``,
``score_head.*``), so released weights load with ``strict=True``.

Token sequence, per sample::

    [template (Nt) | online template (Nt) | search (Ns) | prediction tokens (4: l, r, t, b)]

Template queries attend only to the 2*Nt template keys; search and prediction-token queries
attend to everything. The templates' keys/values therefore never depend on the search image:
``forward_templates`` computes them once and ``forward_search`` reuses them, exactly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from train.models.presets import Architecture

NUM_PRED_TOKENS = 4  # left, right, top, bottom edges


def sincos_pos_embed_2d(embed_dim: int, grid_size: int) -> torch.Tensor:
    """Fixed (grid², D) 2-D sin-cos table, MAE style, float32 (spec 2.1).

    Token r*G + c gets [sin(c w_k), cos(c w_k)] in dims [0, D/2) (the column) and
    [sin(r w_k), cos(r w_k)] in dims [D/2, D) (the row), with w_k = 10000^(-k / (D/4)).
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be a multiple of 4, got {embed_dim}")
    quarter = embed_dim // 4
    omega = np.arange(quarter, dtype=np.float32) / np.float32(quarter)
    omega = (1.0 / np.float32(10000) ** omega).astype(np.float32)                  # (D/4,)
    cols, rows = np.meshgrid(np.arange(grid_size, dtype=np.float32),
                             np.arange(grid_size, dtype=np.float32))              # (G, G) each

    def one_axis(pos: np.ndarray) -> np.ndarray:
        angles = np.einsum("m,d->md", pos.reshape(-1), omega).astype(np.float32)   # (G², D/4)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)           # (G², D/2)

    table = np.concatenate([one_axis(cols), one_axis(rows)], axis=1)               # (G², D)
    return torch.from_numpy(table.astype(np.float32))


class StemEmbed(nn.Module):
    """A pretrained CNN stem, then per-token LayerNorm and a linear map to the model width.

    (B, 3, H, W) -> (B, H/16 * W/16, D). A (B, 48, h, w) input is taken as the stem's output
    already: training with a frozen stem computes it once per crop and caches it.
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        from train.models.stems import STEM_CHANNELS, NanoTrackStem

        self.channels = STEM_CHANNELS
        self.stem = NanoTrackStem()
        self.norm = nn.LayerNorm(STEM_CHANNELS, eps=1e-6)
        self.proj = nn.Linear(STEM_CHANNELS, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Export traces images only (and must not record a branch on the shape).
        from_images = torch.jit.is_tracing() or x.shape[1] != self.channels
        features = self.stem(x) if from_images else x                             # (B, 48, h, w)
        return self.proj(self.norm(features.flatten(2).transpose(1, 2)))


class PatchEmbed(nn.Module):
    """(B, 3, H, W) -> (B, H/p * W/p, D), patches in row-major order."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The stride-p conv computed as one GEMM over non-overlapping patches: the same arithmetic,
        # but an exported graph holds a MatMul, which INT8 runs at GEMM speed. As a Conv it became
        # ConvInteger under dynamic INT8, a slow im2col path: 12 % of MixFormerV2-S's frame.
        B, C, H, W = x.shape
        p = self.patch_size
        patches = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)   # (B, H/p, W/p, C, p, p)
        patches = patches.reshape(B, (H // p) * (W // p), C * p * p)
        return F.linear(patches, self.proj.weight.flatten(1), self.proj.bias)       # (B, N, D)


def _regroup(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, h, N, d) -> (B, heads, N, h*d/heads): the same channels, cut into other heads."""
    B, h, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, heads, h * d // heads).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Plain softmax attention; (B, h, Nq, d) x (B, h, Nk, d) -> (B, h, Nq, d).

    Written out rather than fused so ONNX/TFLite export sees MatMul + Softmax.
    """
    attn = q @ k.transpose(-2, -1)                                                 # (B, h, Nq, Nk)
    if scale != 1.0:  # 1.0 once export has folded the scale into the q projection
        attn = attn * scale
    return attn.softmax(dim=-1) @ v


class MixedAttention(nn.Module):
    """Asymmetric mixed attention (spec 2.2). ``qkv`` rows are [q | k | v], heads of 64.

    ``token_heads`` (0: off) splits the prediction tokens' queries, keys and values into more,
    narrower heads than the other tokens use, with the same weights. A student copied from a
    one-head teacher (VitTrack: one 48-wide head) keeps the teacher's attention for every image
    token, while each prediction token may look at several places at once: with one head its
    attention is one soft pointer and the tokens never located the target (issue 29).
    """

    def __init__(self, dim: int, num_heads: int, token_heads: int = 0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if token_heads and dim % token_heads:
            raise ValueError(f"dim {dim} is not divisible by token_heads {token_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.token_heads = token_heads if token_heads != num_heads else 0
        # The prediction tokens' scale over ``scale``: export folds ``scale`` into q and sets it to 1.
        self.token_ratio = (self.head_dim / (dim // token_heads)) ** 0.5 if self.token_heads else 1.0
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv.unbind(0)                                                       # 3 x (B, h, N, d)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        B, h, N, d = x.shape
        return x.transpose(1, 2).reshape(B, N, h * d)

    def forward(self, x: torch.Tensor, num_template_tokens: int) -> torch.Tensor:
        """x: (B, N, C) with the 2*Nt template tokens first."""
        q, k, v = self._split(x)
        m = num_template_tokens
        out_t = _attend(q[:, :, :m], k[:, :, :m], v[:, :, :m], self.scale)         # templates only
        out_s = self._attend_search(q[:, :, m:], k, v)                             # everything
        return self.proj(self._merge(torch.cat([out_t, out_s], dim=2)))

    def _attend_search(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Search and prediction-token queries over all keys; (B, h, N, d) in and out."""
        if not self.token_heads:
            return _attend(q, k, v, self.scale)
        n = NUM_PRED_TOKENS
        image = _attend(q[:, :, :-n], k, v, self.scale)
        th = self.token_heads
        tokens = _attend(*(_regroup(t, th) for t in (q[:, :, -n:], k, v)), self.scale * self.token_ratio)
        return torch.cat([image, _regroup(tokens, self.num_heads)], dim=2)

    def forward_templates(self, x_t: torch.Tensor):
        """Template tokens alone -> (output, k_t, v_t); k_t/v_t: (B, h, M, d)."""
        q, k, v = self._split(x_t)
        return self.proj(self._merge(_attend(q, k, v, self.scale))), k, v

    def forward_search(self, x_s: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor) -> torch.Tensor:
        """Search + prediction tokens against cached template keys/values."""
        q, k, v = self._split(x_s)
        k = torch.cat([k_t, k], dim=2)
        v = torch.cat([v_t, v], dim=2)
        return self.proj(self._merge(self._attend_search(q, k, v)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact erf GELU, as upstream
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).

    ``residual_scale`` multiplies both residual branches; 1 normally, decayed towards 0 for the
    layers removed by progressive elimination (deep-to-shallow distillation).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, token_heads: int = 0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MixedAttention(dim, num_heads, token_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.residual_scale = 1.0

    def forward(self, x: torch.Tensor, num_template_tokens: int) -> torch.Tensor:
        x = x + self.residual_scale * self.attn(self.norm1(x), num_template_tokens)
        return x + self.residual_scale * self.mlp(self.norm2(x))

    def forward_templates(self, x_t: torch.Tensor):
        y, k_t, v_t = self.attn.forward_templates(self.norm1(x_t))
        x_t = x_t + self.residual_scale * y
        return x_t + self.residual_scale * self.mlp(self.norm2(x_t)), k_t, v_t

    def forward_search(self, x_s: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor) -> torch.Tensor:
        x_s = x_s + self.residual_scale * self.attn.forward_search(self.norm1(x_s), k_t, v_t)
        return x_s + self.residual_scale * self.mlp(self.norm2(x_s))


def _patch_embed(cfg: Architecture) -> nn.Module:
    if cfg.stem == "nanotrack":
        return StemEmbed(cfg.embed_dim)
    if cfg.stem == "vittrack":       # VitTrack's two conv stems, width 48 (train/models/vittrack.py)
        from train.models.vittrack import WIDTH, VitStemEmbed

        if cfg.embed_dim != WIDTH:
            raise ValueError(f"the VitTrack stem gives {WIDTH}-wide tokens, preset {cfg.name} is {cfg.embed_dim} wide")
        return VitStemEmbed()
    return PatchEmbed(cfg.patch_size, cfg.embed_dim)


class Backbone(nn.Module):
    """Patch embedding, position tables, prediction tokens and the block stack (no final norm)."""

    def __init__(self, cfg: Architecture) -> None:
        super().__init__()
        D = cfg.embed_dim
        # Frozen sin-cos tables, stored in the checkpoint as parameters (as upstream).
        self.pos_embed_s = nn.Parameter(sincos_pos_embed_2d(D, cfg.search_grid)[None], requires_grad=False)
        self.pos_embed_t = nn.Parameter(sincos_pos_embed_2d(D, cfg.template_grid)[None], requires_grad=False)
        self.reg_tokens = nn.Parameter(torch.zeros(1, NUM_PRED_TOKENS, D))
        self.pos_embed_reg = nn.Parameter(torch.zeros(1, NUM_PRED_TOKENS, D))
        self.patch_embed = _patch_embed(cfg)
        self.blocks = nn.ModuleList(Block(D, cfg.num_heads, cfg.mlp_ratio, cfg.token_heads) for _ in range(cfg.depth))
        self.tokens_in_blocks = not cfg.readout_heads
        nn.init.trunc_normal_(self.reg_tokens, std=0.02)

    def embed_template(self, x: torch.Tensor) -> torch.Tensor:
        """Template tokens with their positions (a stem may have its own path for templates)."""
        embed = getattr(self.patch_embed, "template", self.patch_embed)
        return embed(x) + self.pos_embed_t

    def embed(self, template, online_template, search):
        """-> (templates (B, 2Nt, D), search + prediction tokens (B, Ns + 4, D))."""
        t, ot = self.embed_template(template), self.embed_template(online_template)
        s = self.patch_embed(search) + self.pos_embed_s
        if not self.tokens_in_blocks:
            return torch.cat([t, ot], dim=1), s
        return torch.cat([t, ot], dim=1), torch.cat([s, self.queries(s.shape[0])], dim=1)

    def queries(self, batch: int) -> torch.Tensor:
        return (self.reg_tokens + self.pos_embed_reg).expand(batch, -1, -1)

    def forward(self, template, online_template, search, return_all: bool = False):
        """-> final tokens (B, 2Nt + Ns + 4, D), or the list after every block if return_all."""
        x_t, x_s = self.embed(template, online_template, search)
        m = x_t.shape[1]
        x = torch.cat([x_t, x_s], dim=1)
        features = []
        for block in self.blocks:
            x = block(x, m)
            features.append(x)
        return features if return_all else x


class DistributionBoxHead(nn.Module):
    """Each prediction token -> a distribution over ``bins`` positions of one box edge (spec 2.3)."""

    # Files exported before 2026-11-30 built the box from the edges with unbind/stack; the flag
    # re-creates that graph (train/weights/recover_onnx.py needs its initialiser numbering).
    stack_form = False

    def __init__(self, dim: int, bins: int, search_size: int, mode_window: int = 0) -> None:
        super().__init__()
        self.bins = bins
        self.search_size = search_size
        self.mode_window = mode_window
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, dim), nn.LayerNorm(dim), nn.ReLU()),
            nn.Sequential(nn.Linear(dim, bins), nn.LayerNorm(bins)),
        )
        # Bin left edges i * search/bins, in pixels. Not in the state dict (upstream has no buffers).
        stride = search_size / bins
        self.register_buffer("bin_pos", torch.arange(bins, dtype=torch.float32) * stride, persistent=False)
        # Rows: x1, x2, y1, y2 in px; columns: cx = (x1 + x2) / 2, cy, w = x2 - x1, h, over the crop size.
        edges_to_cxcywh = torch.tensor([[0.5, 0.0, -1.0, 0.0], [0.5, 0.0, 1.0, 0.0],
                                        [0.0, 0.5, 0.0, -1.0], [0.0, 0.5, 0.0, 1.0]]) / search_size
        self.register_buffer("edges_to_cxcywh", edges_to_cxcywh, persistent=False)

    def forward(self, tokens: torch.Tensor):
        """tokens: (B, 4, D) -> (boxes (B, 4) cx, cy, w, h normalised, edge logits (B, 4, bins))."""
        logits = self.layers(tokens)                                               # (B, 4, F)
        probs = logits.softmax(dim=-1)
        if self.mode_window and not self.training:
            probs = self._near_mode(probs)
        edges = (probs * self.bin_pos).sum(dim=-1)                                # (B, 4): l r t b, px
        if self.stack_form:
            x1, x2, y1, y2 = (edges / self.search_size).unbind(-1)
            return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1), logits
        # Edges to normalised (cx, cy, w, h) by a constant matrix rather than unbind/stack: three
        # graph nodes instead of about twenty, each a dispatch on every frame. Written as a
        # broadcast product, not MatMul, so INT8 export leaves it (and its 0.5s) in fp32.
        return (edges[..., None] * self.edges_to_cxcywh).sum(dim=-2), logits


    def _near_mode(self, probs: torch.Tensor) -> torch.Tensor:
        """Each distribution kept only within ``mode_window`` bins of its most likely bin, renormalised.
        Where the target and a look-alike both draw mass, the full expectation puts the edge between
        them and the next crop drifts; the local one stays on the stronger. Training keeps the full
        expectation (the mask has no gradient of its own)."""
        idx = torch.arange(self.bins, dtype=probs.dtype, device=probs.device)
        top = probs.argmax(dim=-1, keepdim=True).to(probs.dtype)
        near = probs * ((idx - top).abs() <= self.mode_window).to(probs.dtype)
        return near / near.sum(dim=-1, keepdim=True)


class TokenReadout(nn.Module):
    """One layer of the prediction tokens' readout: the tokens read the final search tokens in a
    multi-head cross-attention with projections of its own and a learned position per search token
    (preset ``readout_heads``), then, with ``mlp_ratio`` > 0, a pre-norm MLP of their own. A
    one-head student copied from VitTrack could not learn to locate the target with its tokens
    inside VitTrack's blocks (issue 29): the blocks' projections serve the image tokens, and one
    head is one soft pointer."""

    def __init__(self, dim: int, heads: int, search_tokens: int, mlp_ratio: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by readout heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.pos = nn.Parameter(torch.zeros(1, search_tokens, dim))
        self.norm = nn.LayerNorm(dim)
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.mlp_norm = nn.LayerNorm(dim) if mlp_ratio else None
        self.mlp = Mlp(dim, int(dim * mlp_ratio)) if mlp_ratio else None
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, queries: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """queries (B, 4, D), search (B, Ns, D) -> prediction tokens (B, 4, D)."""
        B, _, D = search.shape
        h = self.heads
        k, v = self.kv(self.norm(search + self.pos)).reshape(B, -1, 2, h, D // h).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q(queries).reshape(B, -1, h, D // h).transpose(1, 2)
        out = _attend(q, k, v, self.scale).transpose(1, 2).reshape(B, -1, D)
        tokens = self.proj(out) + queries
        if self.mlp is not None:
            tokens = tokens + self.mlp(self.mlp_norm(tokens))
        return tokens


def read_tokens(layers: nn.ModuleList, queries: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """The prediction tokens after every readout layer, each reading the same search tokens."""
    for layer in layers:
        queries = layer(queries, search)
    return queries


def readout_layers(cfg: Architecture) -> nn.ModuleList:
    return nn.ModuleList(TokenReadout(cfg.embed_dim, cfg.readout_heads, cfg.search_grid ** 2, cfg.readout_mlp_ratio)
                         for _ in range(cfg.readout_layers))


class ScoreHead(nn.Module):
    """Per-token MLP to one logit; the four logits are averaged (spec 2.4)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, dim), nn.ReLU()), nn.Linear(dim, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layers(tokens).squeeze(-1).mean(dim=-1)                       # (B,)


class MixFormerV2(nn.Module):
    """The tracking network. ``forward`` is the graph contract:

    (template, online_template (B, 3, T, T), search (B, 3, S, S)) ->
    (pred_boxes (B, 4) cx, cy, w, h normalised to the search crop, pred_scores (B,) logits).
    """

    def __init__(self, cfg: Architecture) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.box_head = DistributionBoxHead(cfg.embed_dim, cfg.bins, cfg.search_size, cfg.box_mode_window)
        self.score_head = ScoreHead(cfg.embed_dim)
        if cfg.readout_heads:
            self.norm = nn.LayerNorm(cfg.embed_dim)
            self.readout = readout_layers(cfg)
        self.apply(_init_weights)

    def pred_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction tokens from the last block's search-side tokens."""
        if self.backbone.tokens_in_blocks:
            return x[:, -NUM_PRED_TOKENS:]
        search = self.norm(x[:, -self.cfg.search_grid ** 2:])
        return read_tokens(self.readout, self.backbone.queries(x.shape[0]), search)

    def forward_heads(self, pred_tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        boxes, logits = self.box_head(pred_tokens)
        return {"pred_boxes": boxes, "edge_logits": logits, "pred_scores": self.score_head(pred_tokens)}

    def forward(self, template, online_template, search, train_outputs: bool = False):
        """The graph contract, or with ``train_outputs`` a dict with the edge logits and every
        block's tokens too (training calls the model itself, so DDP sees the forward)."""
        if train_outputs:
            feats = self.backbone(template, online_template, search, return_all=True)
            return {**self.forward_heads(self.pred_tokens(feats[-1])), "features": feats}
        out = self.forward_heads(self.pred_tokens(self.backbone(template, online_template, search)))
        return out["pred_boxes"], out["pred_scores"]

    # -- exact cached-template path ---------------------------------------------------------
    def forward_templates(self, template, online_template):
        """-> per-block (k_t, v_t), each (B, heads, 2Nt, head_dim): all a frame needs of the templates."""
        t, ot = self.backbone.embed_template(template), self.backbone.embed_template(online_template)
        x_t = torch.cat([t, ot], dim=1)
        cache = []
        for block in self.backbone.blocks:
            x_t, k_t, v_t = block.forward_templates(x_t)
            cache.append((k_t, v_t))
        return cache

    def forward_search(self, search, cache):
        bb = self.backbone
        s = bb.patch_embed(search) + bb.pos_embed_s
        x = torch.cat([s, bb.queries(s.shape[0])], dim=1) if bb.tokens_in_blocks else s
        for block, (k_t, v_t) in zip(bb.blocks, cache):
            x = block.forward_search(x, k_t, v_t)
        out = self.forward_heads(self.pred_tokens(x))
        return out["pred_boxes"], out["pred_scores"]


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def build_model(cfg: Architecture, seed: int | None = None) -> MixFormerV2:
    """A model with fresh weights; ``seed`` makes them reproducible."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return MixFormerV2(cfg).eval()
    return MixFormerV2(cfg).eval()
