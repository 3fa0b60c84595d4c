"""VitTrack (OpenCV model zoo) in PyTorch, its weights read from the ONNX file: the teacher of
issue 29's distillation.

A one-stream ViT tracker of the OSTrack family (see ``../shared/models/vittrack/SOURCE.md``),
read off the graph of ``vitTracker.onnx``:

- two conv stems (template and search, separate weights): 3 -> 6 -> 12 -> 24 -> 48 channels,
  3x3 stride-2 convs (batch norm folded in), hard-swish between them, none after the last;
  stride 16: 8x8 template and 16x16 search tokens, each plus its learned position embedding;
- 3 pre-norm blocks over the 320 joint tokens (template first), width 48, one head, qkv bias,
  MLP 192 with exact GELU, LayerNorm eps 1e-5; a final LayerNorm;
- an OSTrack centre head on the 16x16 search tokens: three towers of four 3x3 convs with ReLU
  (48 -> 32 -> 16 -> 8 -> 4) and a 1x1 conv each: centre score (sigmoid, clipped to
  [1e-4, 0.9999]), size (the same) and offset (raw), in search-crop units.

Input: ``(p / 255 - mean) / std`` with ImageNet's mean and std. OpenCV's tracker feeds it BGR
crops; on the validation split it tracks better on RGB (AUC 61.3 against 57.3; the five dev
sequences, reported once, go the other way: 59.9 against 72.1), so the student (preset
``vitstem``), chosen on validation, and its teacher see RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edge.errors import ModelError

WIDTH, BLOCKS, MLP = 48, 3, 192
STEM = (3, 6, 12, 24, 48)
TOWER = (48, 32, 16, 8, 4)
TEMPLATE_TOKENS, SEARCH_TOKENS, MAP = 64, 256, 16
CLIP = (1e-4, 0.9999)


def stem_macs(size: int) -> float:
    """Multiply-accumulates of one conv stem on a (size x size) crop."""
    macs, side = 0, size
    for cin, cout in zip(STEM, STEM[1:]):
        side = (side + 1) // 2
        macs += side * side * cout * cin * 9
    return float(macs)


def conv_stem() -> nn.Sequential:
    layers = []
    for i, (cin, cout) in enumerate(zip(STEM, STEM[1:])):
        layers.append(nn.Conv2d(cin, cout, 3, 2, 1))
        if i < len(STEM) - 2:
            layers.append(nn.Hardswish())
    return nn.Sequential(*layers)


class Block(nn.Module):
    """Pre-norm transformer block with one attention head over all tokens."""

    def __init__(self, dim: int = WIDTH, hidden: int = MLP) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        return self.proj(F.scaled_dot_product_attention(q, k, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(x)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def tower() -> nn.Sequential:
    layers = []
    for cin, cout in zip(TOWER, TOWER[1:]):
        layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.ReLU()]
    return nn.Sequential(*layers)


@dataclass
class TeacherOutput:
    score: torch.Tensor           # (B, 1, 16, 16) centre score, after the sigmoid
    size: torch.Tensor            # (B, 2, 16, 16) w, h over the search crop side
    offset: torch.Tensor          # (B, 2, 16, 16) centre offset within the cell, in cells
    features: list[torch.Tensor]  # (B, 320, 48) tokens after each block (template first), before the last norm


class VitTrack(nn.Module):
    """``forward(template (B,3,128,128), search (B,3,256,256)) -> TeacherOutput``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem_z, self.stem_x = conv_stem(), conv_stem()
        self.pos_embed_z = nn.Parameter(torch.zeros(1, TEMPLATE_TOKENS, WIDTH))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, SEARCH_TOKENS, WIDTH))
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.norm = nn.LayerNorm(WIDTH)
        self.ctr, self.size, self.offset = tower(), tower(), tower()
        self.ctr_out, self.size_out, self.offset_out = nn.Conv2d(4, 1, 1), nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)

    def tokens(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        z = self.stem_z(template).flatten(2).transpose(1, 2) + self.pos_embed_z
        x = self.stem_x(search).flatten(2).transpose(1, 2) + self.pos_embed_x
        return torch.cat([z, x], dim=1)

    def head(self, tokens: torch.Tensor):
        """The centre head on the final (normed) tokens: (score, size, offset) maps."""
        search = tokens[:, -SEARCH_TOKENS:].transpose(1, 2).reshape(-1, WIDTH, MAP, MAP)
        score = torch.sigmoid(self.ctr_out(self.ctr(search))).clamp(*CLIP)
        size = torch.sigmoid(self.size_out(self.size(search))).clamp(*CLIP)
        return score, size, self.offset_out(self.offset(search))

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> TeacherOutput:
        x = self.tokens(template, search)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        score, size, offset = self.head(self.norm(x))
        return TeacherOutput(score, size, offset, features)


# -- weights from the ONNX file ----------------------------------------------------------------

def _graph(path: str):
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError("reading VitTrack needs the 'onnx' package (pip install edge-track[train])") from None
    try:
        graph = onnx.load(path).graph
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for unreadable files
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    return graph, {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def _targets(model: VitTrack) -> dict[str, list[nn.Module]]:
    """The modules that take the graph's Conv and MatMul weights, in graph order."""
    convs = [m for m in (*model.stem_z, *model.stem_x) if isinstance(m, nn.Conv2d)]
    # The graph runs the centre tower, then offset (with its 1x1), then size, then the 1x1s
    # of centre and size.
    towers = [[m for m in t if isinstance(m, nn.Conv2d)] for t in (model.ctr, model.offset, model.size)]
    convs += towers[0] + towers[1] + [model.offset_out] + towers[2] + [model.ctr_out, model.size_out]
    linears = [m for b in model.blocks for m in (b.qkv, b.proj, b.fc1, b.fc2)]
    return {"Conv": convs, "MatMul": linears}


def load_vittrack(path: str) -> VitTrack:
    """VitTrack with every weight copied from ``path`` (``vitTracker.onnx``), in eval mode."""
    graph, init = _graph(path)
    model = VitTrack()
    targets = _targets(model)
    for op, modules in targets.items():
        # Attention's own MatMuls (q k^T, a v) take no stored weight.
        nodes = [n for n in graph.node if n.op_type == op and n.input[1] in init]
        if len(nodes) != len(modules):
            raise ModelError(f"{path}: {len(nodes)} {op} layers, VitTrack has {len(modules)}: not VitTrack")
        for node, module in zip(nodes, modules):
            weight = init[node.input[1]]
            weight = weight.T if op == "MatMul" else weight          # stored [in, out]
            if tuple(weight.shape) != tuple(module.weight.shape):
                raise ModelError(f"{path}: {op} weight of shape {weight.shape}, expected "
                                 f"{tuple(module.weight.shape)}: not VitTrack")
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(weight.copy()))
                if op == "Conv":
                    module.bias.copy_(torch.from_numpy(init[node.input[2]].copy()))
    named = {"pos_embed_z": model.pos_embed_z, "pos_embed_x": model.pos_embed_x,
             "norm.weight": model.norm.weight, "norm.bias": model.norm.bias}
    for i, block in enumerate(model.blocks):
        for onnx_name, param in (("norm1.weight", block.norm1.weight), ("norm1.bias", block.norm1.bias),
                                 ("norm2.weight", block.norm2.weight), ("norm2.bias", block.norm2.bias),
                                 ("attn.qkv.bias", block.qkv.bias), ("attn.proj.bias", block.proj.bias),
                                 ("mlp.fc1.bias", block.fc1.bias), ("mlp.fc2.bias", block.fc2.bias)):
            named[f"blocks.{i}.{onnx_name}"] = param
    for name, param in named.items():
        if name not in init or init[name].shape != tuple(param.shape):
            raise ModelError(f"{path}: no {name} of shape {tuple(param.shape)}: not VitTrack")
        with torch.no_grad():
            param.copy_(torch.from_numpy(init[name].copy()))
    return model.eval()


# -- the student: a MixFormerV2 that starts as VitTrack (issue 29, the paper's recipe) ----------

class VitStemEmbed(nn.Module):
    """VitTrack's two conv stems as a MixFormerV2 patch embedding: ``forward`` is the search
    stem, ``template`` the template stem (``Backbone.embed_template`` calls it for the template
    and the online template). (B, 3, H, W) -> (B, H/16 * W/16, 48), no projection."""

    def __init__(self) -> None:
        super().__init__()
        self.stem_z, self.stem_x = conv_stem(), conv_stem()

    def template(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem_z(x).flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem_x(x).flatten(2).transpose(1, 2)


def student_from_teacher(teacher: VitTrack, cfg, seed: int = 0):
    """A MixFormerV2 of preset ``cfg`` (stem "vittrack", width 48, one head) with VitTrack's stems,
    position embeddings and its first ``cfg.depth`` blocks copied in; the prediction tokens, box
    and score heads are new. The attention becomes MixFormerV2's asymmetric one (template queries
    see only the templates), as in the paper's students."""
    from train.model import build_model

    if cfg.stem != "vittrack" or cfg.embed_dim != WIDTH or cfg.num_heads != 1 or cfg.depth > BLOCKS:
        raise ModelError(f"preset {cfg.name} cannot start from VitTrack (needs stem vittrack, width {WIDTH}, "
                         f"1 head, at most {BLOCKS} blocks)")
    if int(cfg.embed_dim * cfg.mlp_ratio) != MLP or (cfg.template_size, cfg.search_size) != (128, 256):
        raise ModelError(f"preset {cfg.name}: VitTrack's blocks have MLP {MLP} and 128/256 px inputs")
    student = build_model(cfg, seed=seed)
    bb = student.backbone
    with torch.no_grad():
        bb.patch_embed.stem_z.load_state_dict(teacher.stem_z.state_dict())
        bb.patch_embed.stem_x.load_state_dict(teacher.stem_x.state_dict())
        bb.pos_embed_t.copy_(teacher.pos_embed_z)
        bb.pos_embed_s.copy_(teacher.pos_embed_x)
        for mine, theirs in zip(bb.blocks, teacher.blocks):
            for a, b in ((mine.norm1, theirs.norm1), (mine.norm2, theirs.norm2), (mine.attn.qkv, theirs.qkv),
                         (mine.attn.proj, theirs.proj), (mine.mlp.fc1, theirs.fc1), (mine.mlp.fc2, theirs.fc2)):
                a.load_state_dict(b.state_dict())
    return student.eval()


@torch.no_grad()
def init_tokens_from_templates(student, templates: torch.Tensor) -> None:
    """Start the four prediction tokens (left, right, top, bottom) as the mean embedded template
    token along that edge of the target (the template crop is twice the target: the target is
    its middle half of tokens). Started small and random, training drove them to attend to each
    other (99 % of block 0's attention after 300 steps) and give one box for every pair; started as
    target tokens they are distinct, and their queries are made to find the target."""
    tokens = student.backbone.embed_template(templates)                     # (B, G*G, D)
    grid = int(round(tokens.shape[1] ** 0.5))
    maps = tokens.reshape(-1, grid, grid, tokens.shape[-1]).mean(dim=0)     # (G, G, D): row, column
    lo, hi = grid // 4, grid - grid // 4 - 1                                 # the target's first and last cell
    inner = slice(lo, hi + 1)
    edges = [maps[inner, lo].mean(0), maps[inner, hi].mean(0), maps[lo, inner].mean(0), maps[hi, inner].mean(0)]
    student.backbone.reg_tokens.copy_(torch.stack(edges)[None] - student.backbone.pos_embed_reg)


def map_edge_probs(score: torch.Tensor, size: torch.Tensor, offset: torch.Tensor, bins: int,
                   top_k: int = 16, temperature: float = 0.1) -> torch.Tensor:
    """The centre head's maps -> (B, 4, bins) edge distributions (l, r, t, b) over the search crop.

    Each cell implies a box (centre at the cell plus its offset, the size at the cell); the
    ``top_k`` best-scored cells, weighted by a softmax of their scores at ``temperature``, each
    vote a Gaussian per edge (``train.teachers.edges_to_distribution``, as for NanoTrack)."""
    from train.teachers import edges_to_distribution

    b, _, rows, cols = score.shape
    grid_y, grid_x = torch.meshgrid(torch.arange(rows, dtype=score.dtype, device=score.device),
                                    torch.arange(cols, dtype=score.dtype, device=score.device), indexing="ij")
    cx = (grid_x.reshape(1, -1) + offset[:, 0].reshape(b, -1)) / cols
    cy = (grid_y.reshape(1, -1) + offset[:, 1].reshape(b, -1)) / rows
    w, h = size[:, 0].reshape(b, -1), size[:, 1].reshape(b, -1)
    edges = torch.stack([cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2], dim=-1)             # (B, N, 4)
    top = score.reshape(b, -1).topk(top_k, dim=1)
    weights = ((top.values - top.values[:, :1]) / temperature).softmax(dim=1)
    chosen = edges.gather(1, top.indices[..., None].expand(-1, -1, 4))
    return edges_to_distribution(chosen, weights, bins)


class VitTrackTeacher:
    """VitTrack as the dense-to-sparse teacher: it sees the student's own template and search
    tensors (same crops, same normalisation: the student's preset is VitTrack's), and gives the
    edge distributions of its centre head, its per-block features and its best cell's score."""

    def __init__(self, path: str, top_k: int = 16, temperature: float = 0.1) -> None:
        self.model = load_vittrack(path)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.top_k, self.temperature = top_k, temperature

    def to(self, device):
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, template, online_template, search, bins: int) -> dict:
        out = self.model(template, search)
        probs = map_edge_probs(out.score.float(), out.size.float(), out.offset.float(), bins, self.top_k,
                               self.temperature)
        return {"edge_probs": probs, "features": out.features,
                "score": out.score.flatten(1).max(dim=1).values}
