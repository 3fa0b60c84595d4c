"""Metrics on hand-computed cases."""

import numpy as np
import pytest

from edge.evaluation.metrics import iou, mean_scores, score_sequence

GT = [0.0, 0.0, 10.0, 10.0]


def test_perfect_tracker_scores_20_of_21():
    gt = np.array([GT, [5, 5, 10, 20], [7, 3, 4, 4]])
    s = score_sequence(gt.copy(), gt)
    assert s.auc == pytest.approx(20 / 21) and s.precision == 1.0 and s.norm_precision == 1.0


def test_iou_of_exactly_one_half_fails_the_half_threshold():
    assert iou(np.array([[0, 0, 10, 5]]), np.array([GT]))[0] == 0.5
    s = score_sequence(np.array([GT, [0, 0, 10, 5]]), np.array([GT, GT]))
    # t < 0.5: both frames pass; 0.5 <= t < 1: only frame 0; t = 1: none.
    assert s.auc == pytest.approx((10 * 1 + 10 * 0.5 + 0) / 21)


def test_centre_error_of_exactly_20px_counts_as_precise():
    s = score_sequence(np.array([GT, [20, 0, 10, 10], [20.001, 0, 10, 10]]), np.array([GT, GT, GT]))
    assert s.precision == pytest.approx(2 / 3)
    assert s.norm_precision == pytest.approx(1 / 3)  # 20 px on a 10 px box is 2.0 normalised


def test_frame_zero_is_scored_as_the_given_box():
    s = score_sequence(np.array([[50, 50, 1, 1], GT]), np.array([GT, GT]))
    assert s.auc == pytest.approx(20 / 21)


def test_absent_frames_are_failures_in_the_denominator():
    gt = np.array([GT, GT, GT])
    s = score_sequence(gt.copy(), gt, absent=np.array([False, False, True]))
    assert s.auc == pytest.approx(2 / 3 * 20 / 21)
    assert s.precision == pytest.approx(2 / 3) and s.norm_precision == pytest.approx(2 / 3)


def test_nan_predictions_fail_and_nan_ground_truth_is_invalid():
    s = score_sequence(np.array([GT, [np.nan] * 4, GT]), np.array([GT, GT, [np.nan] * 4]))
    assert s.auc == pytest.approx(1 / 3 * 20 / 21) and s.precision == pytest.approx(1 / 3)


def test_sequences_of_unequal_length_weigh_equally():
    a = score_sequence(np.array([GT, GT]), np.array([GT, GT]))
    far = [100, 100, 10, 10]
    b = score_sequence(np.array([GT, far, far, far]), np.array([GT] * 4))
    assert b.auc == pytest.approx(0.25 * 20 / 21)
    assert mean_scores([a, b])["auc"] == pytest.approx(12.5 / 21)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        score_sequence(np.zeros((3, 4)), np.zeros((4, 4)))
