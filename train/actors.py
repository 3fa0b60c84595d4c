"""Actors own the objective: given the model and a batch they return (loss, stats); the trainer
stays generic (pytracking's split)."""

from __future__ import annotations

import torch

from train.losses import IOU_LOSSES, cxcywh_to_xyxy, edge_kl_loss, feature_mimic_loss, score_loss


def _forward(model, batch, need_features: bool):
    out = model(batch["template"], batch["online_template"], batch["search"], train_outputs=True)
    return out, out["features"]


class BoxActor:
    """Stages 1 and 2: 2 CIoU + 5 L1 against the ground truth, + 5 KL against a teacher's edge
    distributions when there is one, + 0.2 feature MSE between chosen layer pairs in stage 2."""

    def __init__(self, loss_cfg, teacher=None, feature_pairs=()) -> None:
        self.cfg = loss_cfg
        self.teacher = teacher
        self.feature_pairs = [tuple(p) for p in feature_pairs]
        self.iou_loss = IOU_LOSSES[loss_cfg.iou]

    def __call__(self, model, batch):
        out, feats = _forward(model, batch, need_features=bool(self.feature_pairs))
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
                mimic = feature_mimic_loss(feats, taught["features"], self.feature_pairs)
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
        out, _ = _forward(model, batch, need_features=False)
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
