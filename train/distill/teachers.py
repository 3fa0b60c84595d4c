"""Teachers for distillation: anything that gives, for a (template, search) pair, four edge
distributions (left, right, top, bottom) over the student's bins of the search crop.

- ``marginalize_corners``: a MixViT-style dense corner head's top-left / bottom-right probability
  maps summed along one axis (spec section 5, stage 1).
- ``MixFormerV2Teacher``: a (deeper) MixFormerV2 for deep-to-shallow distillation.
- ``NanoTrackTeacher``: the real, trained NanoTrack V2 tracker from ../shared/models/opencv; its
  classification map weights the boxes its regression map implies, and their edges are spread over
  the student's bins.
"""

from __future__ import annotations

import numpy as np
import torch

EDGE_ORDER = ("left", "right", "top", "bottom")


def marginalize_corners(tl: torch.Tensor, br: torch.Tensor) -> torch.Tensor:
    """(B, H, W) top-left and bottom-right probability maps -> (B, 4, W|H) edge distributions.

    left = sum over rows of TL (a distribution over x), top = sum over columns of TL, and the same
    for right/bottom from BR. Order (left, right, top, bottom), as the prediction tokens.
    """
    if tl.shape != br.shape or tl.shape[-1] != tl.shape[-2]:
        raise ValueError(f"corner maps must be square and alike, got {tuple(tl.shape)} and {tuple(br.shape)}")
    left, top = tl.sum(dim=1), tl.sum(dim=2)
    right, bottom = br.sum(dim=1), br.sum(dim=2)
    return torch.stack([left, right, top, bottom], dim=1)


def resample_bins(probs: torch.Tensor, bins_out: int) -> torch.Tensor:
    """Edge distributions over F_in bins at positions i/F_in -> F_out bins at j/F_out.

    Mass moves linearly between the two nearest output bins, so the expectation is kept (a 72-bin
    teacher can teach a 96-bin student).
    """
    f_in = probs.shape[-1]
    pos = torch.arange(f_in, dtype=probs.dtype, device=probs.device) / f_in * bins_out   # in output bin units
    lo = pos.floor().clamp(0, bins_out - 1)
    frac = (pos - lo).clamp(0, 1)
    hi = (lo + 1).clamp(max=bins_out - 1)
    out = torch.zeros(*probs.shape[:-1], bins_out, dtype=probs.dtype, device=probs.device)
    out.index_add_(-1, lo.long(), probs * (1 - frac))
    out.index_add_(-1, hi.long(), probs * frac)
    return out


def edges_to_distribution(edges: torch.Tensor, weights: torch.Tensor, bins: int,
                          sigma_bins: float = 1.0) -> torch.Tensor:
    """Weighted edge positions -> a smoothed distribution over ``bins`` bins.

    edges: (B, K, 4) normalised positions (l, r, t, b) of K candidate boxes; weights (B, K) summing
    to 1. Each candidate adds a Gaussian of ``sigma_bins`` at its edge; rows are normalised.
    """
    centres = torch.arange(bins, dtype=edges.dtype, device=edges.device)                 # (F,)
    x = edges.clamp(0, 1 - 1e-6) * bins                                                    # (B, K, 4)
    kernel = torch.exp(-0.5 * ((x[..., None] - centres) / sigma_bins) ** 2)                # (B, K, 4, F)
    kernel = kernel / kernel.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    dist = (weights[..., None, None] * kernel).sum(dim=1)                                  # (B, 4, F)
    return dist / dist.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class CornerMapTeacher:
    """A dense corner-head tracker (MixViT style) as teacher.

    ``model(template, online_template, search)`` returns top-left and bottom-right score maps
    (B, H, W) over the search crop (logits); they are softmaxed over all H*W positions,
    marginalised into the four edge distributions, and resampled to the student's bins.
    """

    def __init__(self, model) -> None:
        self.model = model.eval() if hasattr(model, "eval") else model

    @torch.no_grad()
    def __call__(self, template, online_template, search, bins: int):
        tl, br = self.model(template, online_template, search)
        b, h, w = tl.shape
        tl = tl.reshape(b, -1).softmax(-1).reshape(b, h, w)
        br = br.reshape(b, -1).softmax(-1).reshape(b, h, w)
        probs = marginalize_corners(tl, br)
        return {"edge_probs": resample_bins(probs, bins) if probs.shape[-1] != bins else probs}


class MixFormerV2Teacher:
    """A frozen MixFormerV2 (e.g. the 12-layer stage-1 model) as teacher: its softmaxed edge logits."""

    def __init__(self, model) -> None:
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, template, online_template, search, bins: int):
        out = self.model(template, online_template, search, train_outputs=True)
        feats = out["features"]
        probs = out["edge_logits"].softmax(dim=-1)
        if probs.shape[-1] != bins:
            probs = resample_bins(probs, bins)
        return {"edge_probs": probs, "features": feats, "pred_boxes": out["pred_boxes"]}


class NanoTrackTeacher:
    """NanoTrack V2 (OpenCV's tracker model, Apache-2.0) as a dense-head teacher.

    It sees the same pixels as the student: the student's template crop resized to 127 and its
    search crop resized to 255. Its 16x16 map of anchor points (stride 16, centred on the crop)
    scores each point (softmax over 2 classes) and regresses distances (l, t, r, b) in crop pixels
    to the box edges. The top-k points, weighted by a softmax of their scores, give the edge
    distributions over the student's bins.
    """

    TEMPLATE, SEARCH, STRIDE, MAP = 127, 255, 16, 16

    def __init__(self, model_dir: str, top_k: int = 16, temperature: float = 0.1) -> None:
        import os

        import cv2

        self.backbone = cv2.dnn.readNet(os.path.join(model_dir, "nanotrack_backbone_sim.onnx"))
        self.head = cv2.dnn.readNet(os.path.join(model_dir, "nanotrack_head_sim.onnx"))
        self.top_k, self.temperature = top_k, temperature

    def _features(self, image_rgb: np.ndarray, size: int) -> np.ndarray:
        import cv2

        patch = cv2.resize(image_rgb, (size, size))
        blob = cv2.dnn.blobFromImage(cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))   # NanoTrack: BGR 0..255
        self.backbone.setInput(blob)
        return self.backbone.forward()

    def dense(self, template_rgb: np.ndarray, search_rgb: np.ndarray):
        """(positive-class scores (16, 16), boxes (16, 16, 4) xyxy in 255-crop pixels)."""
        zf = self._features(template_rgb, self.TEMPLATE)
        xf = self._features(search_rgb, self.SEARCH)
        self.head.setInput(zf, "input1")
        self.head.setInput(xf, "input2")
        cls, loc = self.head.forward(["output1", "output2"])
        return decode_nanotrack(cls, loc)

    def __call__(self, template_rgb: np.ndarray, search_rgb: np.ndarray, bins: int) -> torch.Tensor:
        """(4, bins) edge distributions (l, r, t, b) over the search crop, from uint8 RGB crops."""
        score, boxes = self.dense(template_rgb, search_rgb)
        return dense_to_edge_probs(score, boxes / self.SEARCH, bins, self.top_k, self.temperature)


def decode_nanotrack(cls: np.ndarray, loc: np.ndarray):
    """NanoTrack's head outputs (1, 2, 16, 16), (1, 4, 16, 16) -> (positive-class scores (16, 16),
    boxes (16, 16, 4) xyxy in pixels of its 255 crop). Its anchor points have stride 16, centred
    on the crop, and ``loc`` holds distances (l, t, r, b) from each point to the box edges."""
    size, stride, grid = NanoTrackTeacher.SEARCH, NanoTrackTeacher.STRIDE, NanoTrackTeacher.MAP
    offsets = (np.arange(grid) - grid // 2) * stride + size // 2
    px, py = np.meshgrid(offsets, offsets)
    logits = cls[0]                                                       # (2, 16, 16)
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    score = e[1] / e.sum(axis=0)
    left, top, right, bottom = loc[0]
    return score, np.stack([px - left, py - top, px + right, py + bottom], axis=-1)


def dense_to_edge_probs(score: np.ndarray, boxes: np.ndarray, bins: int, top_k: int = 16,
                        temperature: float = 0.1) -> torch.Tensor:
    """A dense head's answer -> (4, bins) edge distributions (l, r, t, b).

    score: (H, W) target probabilities; boxes: (H, W, 4) xyxy normalised to the search crop. The
    top-k points, weighted by a softmax of their scores, each vote a Gaussian per edge.
    """
    flat = score.reshape(-1)
    idx = np.argsort(flat)[-top_k:]
    w = np.exp((flat[idx] - flat[idx].max()) / temperature)
    w = w / w.sum()
    x1, y1, x2, y2 = boxes.reshape(-1, 4)[idx].T
    edges = torch.from_numpy(np.stack([x1, x2, y1, y2], axis=-1)[None].astype(np.float32))   # (1, K, 4)
    return edges_to_distribution(edges, torch.from_numpy(w[None].astype(np.float32)), bins)[0]
