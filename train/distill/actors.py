"""Actors own the objective: given the model and a batch they return (loss, stats); the trainer
stays generic (pytracking's split)."""

from __future__ import annotations

import torch

from edge.errors import ModelError
from train.distill.losses import IOU_LOSSES, cxcywh_to_xyxy, edge_kl_loss, feature_mimic_loss, score_loss


def _forward(model, batch):
    """The training forward: boxes, scores, edge logits and every layer's features."""
    return model(batch["template"], batch["online_template"], batch["search"], train_outputs=True)


class BoxActor:
    """Stages 1 and 2: 2 CIoU + 5 L1 against the ground truth, + 5 KL against a teacher's edge
    distributions when there is one, + 0.2 feature MSE between chosen layer pairs in stage 2."""

    def __init__(self, loss_cfg, teacher=None, feature_pairs=()) -> None:
        self.cfg = loss_cfg
        self.teacher = teacher
        self.feature_pairs = [tuple(p) for p in feature_pairs]
        self.iou_loss = IOU_LOSSES[loss_cfg.iou]

    def __call__(self, model, batch):
        out = _forward(model, batch)
        pred = cxcywh_to_xyxy(out["pred_boxes"])
        target = batch["target_xyxy"]
        iou_loss, iou = self.iou_loss(pred, target)
        l1 = torch.nn.functional.l1_loss(pred, target)
        loss = self.cfg.iou_weight * iou_loss + self.cfg.l1_weight * l1
        stats = {"iou_loss": float(iou_loss), "l1": float(l1), "iou": float(iou.mean())}
        if self.teacher is not None:
            taught = self.teacher(batch)
            kl = edge_kl_loss(out["edge_logits"].float(), taught["edge_probs"].to(out["edge_logits"].device))
            loss = loss + self.cfg.kl_weight * kl
            stats["kl"] = float(kl)
            if self.feature_pairs and "features" in taught:
                mimic = feature_mimic_loss(out["features"], taught["features"], self.feature_pairs)
                loss = loss + self.cfg.feature_weight * mimic
                stats["feature"] = float(mimic)
        stats["loss"] = float(loss)
        return loss, stats


class ScoreActor:
    """Stage 3: only the score head learns, from positives (target in the search crop) and
    negatives (a search region without it)."""

    def __init__(self, loss_cfg) -> None:
        self.cfg = loss_cfg

    def __call__(self, model, batch):
        out = _forward(model, batch)
        loss = self.cfg.score_weight * score_loss(out["pred_scores"], batch["label"])
        with torch.no_grad():
            accuracy = ((out["pred_scores"] > 0).float() == batch["label"]).float().mean()
        return loss, {"loss": float(loss), "score_accuracy": float(accuracy)}


class NanoTrackBatchTeacher:
    """The NanoTrack teacher over a batch of uint8 crops (it runs on OpenCV's DNN, per sample)."""

    def __init__(self, teacher, bins: int) -> None:
        self.teacher, self.bins = teacher, bins

    def __call__(self, batch):
        probs = [self.teacher(t.numpy(), s.numpy(), self.bins)
                 for t, s in zip(batch["template_rgb"], batch["search_rgb"])]
        return {"edge_probs": torch.stack(probs)}


class MixFormerBatchTeacher:
    def __init__(self, teacher, bins: int) -> None:
        self.teacher, self.bins = teacher, bins

    def __call__(self, batch):
        return self.teacher(batch["template"], batch["online_template"], batch["search"], self.bins)


class FrozenStemActor:
    """Training on cached stem features (stage frozen_stem): against the target box, IoU loss +
    L1; against NanoTrack's dense head, KL on the edge distributions and BCE of a per-search-token
    score (a training-only linear head: it makes every search token say whether it is on the
    target, a dense signal the four prediction tokens then read); BCE of the score head on
    presence. Box and teacher terms apply to positives only."""

    def __init__(self, loss_cfg, embed_dim: int, num_search_tokens: int) -> None:
        self.cfg = loss_cfg
        self.iou_loss = IOU_LOSSES[loss_cfg.iou]
        self.dense_head = torch.nn.Linear(embed_dim, 1)
        self.ns = num_search_tokens

    def parameters(self):
        return self.dense_head.parameters()

    def to(self, device):
        self.dense_head.to(device)
        return self

    def __call__(self, model, batch):
        if not model.backbone.tokens_in_blocks:
            raise ModelError(f"{model.cfg.name} reads its tokens after the blocks: this stage needs them inside")
        out = model(batch["template"], batch["online_template"], batch["search"], train_outputs=True)
        pos = batch["label"] > 0
        tokens = out["features"][-1]
        search_tokens = tokens[:, -(self.ns + 4):-4]                                 # (B, Ns, D)
        dense = self.dense_head(search_tokens).squeeze(-1)                           # (B, Ns)
        dense_target = batch["teacher_score"].flatten(1) * batch["label"][:, None]
        dense_loss = torch.nn.functional.binary_cross_entropy_with_logits(dense, dense_target)
        presence = score_loss(out["pred_scores"], batch["label"])
        loss = self.cfg.dense_weight * dense_loss + self.cfg.score_weight * presence
        stats = {"dense": dense_loss.item(), "presence": presence.item()}
        if pos.any():
            pred = cxcywh_to_xyxy(out["pred_boxes"][pos])
            target = batch["target_xyxy"][pos]
            iou_loss, iou = self.iou_loss(pred, target)
            l1 = torch.nn.functional.l1_loss(pred, target)
            kl = edge_kl_loss(out["edge_logits"][pos].float(), batch["teacher_probs"][pos])
            loss = loss + self.cfg.iou_weight * iou_loss + self.cfg.l1_weight * l1 + self.cfg.kl_weight * kl
            stats.update(iou_loss=iou_loss.item(), l1=l1.item(), kl=kl.item(), iou=iou.mean().item())
        stats["loss"] = loss.item()
        return loss, stats
