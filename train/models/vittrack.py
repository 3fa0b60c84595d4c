"""VitTrack (OpenCV model zoo) in PyTorch, its weights read from the ONNX file: the network behind
issue 29's teacher (train/distill/vittrack_teacher.py) and the stems of preset ``vitstem``.

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


# -- VitTrack's stems as a MixFormerV2 patch embedding (preset vitstem; the student that starts as
# VitTrack is made in train/distill/vittrack_teacher.py) -------------------------------------------

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
