"""One-pass-evaluation metrics as small numpy functions.

Conventions (pytracking / LaSOT lineage, see README "Evaluation"):
- IoU is the continuous box overlap; success(t) = fraction of frames with IoU > t (strict) for
  the 21 thresholds 0, 0.05, ..., 1; AUC is their mean, so a perfect tracker scores 20/21.
- Precision: fraction of frames whose centre error is <= 20 px.
- Normalised precision: centres divided by the ground-truth width/height per axis, fraction of
  frames with distance <= 0.20.
- Frame 0 is scored as the given initial box. Frames whose target is absent (or whose ground
  truth has no area) stay in the denominator and fail every threshold.
- Sequences are averaged with equal weight.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLD_PX = 20.0
NORM_PRECISION_THRESHOLD = 0.20


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, 4) x (N, 4) xywh -> (N,) IoU; NaN where either box is not finite."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    left = np.maximum(pred[:, 0], gt[:, 0])
    top = np.maximum(pred[:, 1], gt[:, 1])
    right = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
    bottom = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def centers(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64)
    return boxes[:, :2] + boxes[:, 2:] / 2


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(centers(pred) - centers(gt), axis=1)


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    gt = np.asarray(gt, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm((centers(pred) - centers(gt)) / gt[:, 2:], axis=1)


@dataclass(frozen=True)
class SequenceScore:
    auc: float
    precision: float
    norm_precision: float
    success_curve: np.ndarray  # (21,)
    frames: int


def score_sequence(pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None) -> SequenceScore:
    """Score predictions (N, 4) against ground truth (N, 4) xywh; ``absent`` (N,) bool."""
    pred = np.array(pred, dtype=np.float64, copy=True)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f"predictions {pred.shape} and ground truth {gt.shape} must both be (N, 4)")
    n = len(gt)
    if n == 0:
        raise ValueError("cannot score an empty sequence")
    pred[0] = gt[0]
    valid = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if absent is not None:
        valid &= ~np.asarray(absent, dtype=bool)
    finite = np.all(np.isfinite(pred), axis=1)
    ok = valid & finite

    overlaps = np.full(n, -1.0)
    overlaps[ok] = iou(pred[ok], gt[ok])
    err = np.full(n, np.inf)
    err[ok] = center_error(pred[ok], gt[ok])
    norm_err = np.full(n, np.inf)
    norm_err[ok] = normalized_center_error(pred[ok], gt[ok])

    curve = np.array([(overlaps > t).mean() for t in SUCCESS_THRESHOLDS])
    return SequenceScore(
        auc=float(curve.mean()),
        precision=float((err <= PRECISION_THRESHOLD_PX).mean()),
        norm_precision=float((norm_err <= NORM_PRECISION_THRESHOLD).mean()),
        success_curve=curve,
        frames=n,
    )


def mean_scores(scores: list[SequenceScore]) -> dict[str, float]:
    """Equal weight per sequence."""
    if not scores:
        raise ValueError("no sequences to average")
    return {
        "auc": float(np.mean([s.auc for s in scores])),
        "precision": float(np.mean([s.precision for s in scores])),
        "norm_precision": float(np.mean([s.norm_precision for s in scores])),
    }


# A frame whose box overlaps the truth by more than TRACKED_IOU is tracked; by less than
# FAILED_IOU the tracker has lost the target, whatever it says. A confidence is judged by how many
# failed frames it marks LOST and how few tracked ones.
TRACKED_IOU, FAILED_IOU = 0.5, 0.1


@dataclass(frozen=True)
class LostCounts:
    failed: int = 0
    failed_lost: int = 0
    tracked: int = 0
    tracked_lost: int = 0

    def __add__(self, other: "LostCounts") -> "LostCounts":
        return LostCounts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    @property
    def on_failed(self) -> float | None:
        """Share of failed frames marked LOST (None: no failed frame)."""
        return self.failed_lost / self.failed if self.failed else None

    @property
    def on_tracked(self) -> float | None:
        """Share of tracked frames marked LOST (None: no tracked frame)."""
        return self.tracked_lost / self.tracked if self.tracked else None


def lost_counts(pred: np.ndarray, gt: np.ndarray, lost: np.ndarray, absent: np.ndarray | None = None) -> LostCounts:
    """How the LOST state (N,) bool sat against the overlap, frames 1.. with the target present."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    ok = np.all(np.isfinite(gt), axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0) & np.all(np.isfinite(pred), axis=1)
    if absent is not None:
        ok &= ~np.asarray(absent, dtype=bool)
    ok[0] = False   # the given box
    overlap = np.full(len(gt), np.nan)
    overlap[ok] = iou(pred[ok], gt[ok])
    lost = np.asarray(lost, dtype=bool)
    failed, tracked = ok & (overlap < FAILED_IOU), ok & (overlap > TRACKED_IOU)
    return LostCounts(int(failed.sum()), int((failed & lost).sum()), int(tracked.sum()), int((tracked & lost).sum()))
