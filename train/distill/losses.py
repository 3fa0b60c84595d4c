"""Training losses of MixFormerV2 (spec section 5).

Boxes are normalised (x1, y1, x2, y2) unless a name says ``cxcywh``. The released training code
wires the *complete* IoU loss (its function called ``giou`` is not used): CIoU is the default
here and GIoU is selectable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _iou_parts(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7):
    """(iou, union, enclosing x1y1, enclosing x2y2) for (N, 4) xyxy boxes."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp(min=0).prod(dim=1)
    area_t = (target[:, 2:] - target[:, :2]).clamp(min=0).prod(dim=1)
    union = area_p + area_t - inter
    iou = inter / (union + eps)
    return iou, union, torch.min(pred[:, :2], target[:, :2]), torch.max(pred[:, 2:], target[:, 2:])


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7):
    """(mean 1 - GIoU, IoU per box)."""
    iou, union, enc_lt, enc_rb = _iou_parts(pred, target, eps)
    enclosing = (enc_rb - enc_lt).clamp(min=0).prod(dim=1)
    giou = iou - (enclosing - union) / (enclosing + eps)
    return (1 - giou).mean(), iou


def ciou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7):
    """(mean 1 - CIoU, IoU per box): IoU, minus centre distance over the enclosing diagonal, minus
    the aspect-ratio term alpha * v with v = 4/pi^2 (atan(wt/ht) - atan(wp/hp))^2."""
    iou, _, enc_lt, enc_rb = _iou_parts(pred, target, eps)
    diag2 = ((enc_rb - enc_lt) ** 2).sum(dim=1) + eps
    centre2 = (((pred[:, :2] + pred[:, 2:]) - (target[:, :2] + target[:, 2:])) ** 2).sum(dim=1) / 4
    wp, hp = (pred[:, 2] - pred[:, 0]).clamp(min=eps), (pred[:, 3] - pred[:, 1]).clamp(min=eps)
    wt, ht = (target[:, 2] - target[:, 0]).clamp(min=eps), (target[:, 3] - target[:, 1]).clamp(min=eps)
    v = (4 / math.pi ** 2) * (torch.atan(wt / ht) - torch.atan(wp / hp)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    ciou = iou - centre2 / diag2 - alpha * v
    return (1 - ciou).mean(), iou


def edge_kl_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Mean over the 4 edges of KL(teacher || student), batch-mean, as the official actor does.

    student_logits: (B, 4, F) post-LayerNorm logits of the box head; teacher_probs: (B, 4, F).
    """
    log_p = F.log_softmax(student_logits, dim=-1)
    losses = [F.kl_div(log_p[:, i], teacher_probs[:, i], reduction="batchmean") for i in range(4)]
    return torch.stack(losses).mean()


def feature_mimic_loss(student_feats, teacher_feats, pairs) -> torch.Tensor:
    """MSE between chosen (student layer, teacher layer) token sequences, averaged over pairs."""
    return torch.stack([F.mse_loss(student_feats[s], teacher_feats[t]) for s, t in pairs]).mean()


def score_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, labels.float())


IOU_LOSSES = {"ciou": ciou_loss, "giou": giou_loss}
