"""VitTrack as the teacher of issue 29's distillation, and the student that starts as VitTrack (the
paper's recipe): its stems, position embeddings and blocks copied into a MixFormerV2 of preset
``vitstem``. The network itself is train/models/vittrack.py.
"""

from __future__ import annotations

import torch

from edge.errors import ModelError
from train.distill.teachers import edges_to_distribution
from train.models.model import build_model
from train.models.vittrack import BLOCKS, MLP, WIDTH, VitTrack, load_vittrack


def student_from_teacher(teacher: VitTrack, cfg, seed: int = 0):
    """A MixFormerV2 of preset ``cfg`` (stem "vittrack", width 48, one head) with VitTrack's stems,
    position embeddings and its first ``cfg.depth`` blocks copied in; the prediction tokens, box
    and score heads are new. The attention becomes MixFormerV2's asymmetric one (template queries
    see only the templates), as in the paper's students."""
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
        if cfg.readout_heads:
            student.norm.load_state_dict(teacher.norm.state_dict())
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
    vote a Gaussian per edge (``train.distill.teachers.edges_to_distribution``, as for NanoTrack)."""
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
