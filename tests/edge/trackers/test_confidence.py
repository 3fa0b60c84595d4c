"""NanoTrack's confidence: a score that falls when the target is lost, and the metadata that carries it."""

import json
import math
import os

import numpy as np
import pytest

from conftest import make_clip_frames, shared_path
from edge.errors import ConfigError
from edge.trackers.catalog import DATA
from edge.trackers.confidence import SIDECAR, LogitConfidence, nanotrack_meta, parse_meta, read_meta
from edge.trackers.nanotrack import open_nanotrack
from edge.trackers.state import TrackState

BUNDLED_V3 = os.path.join(DATA, "nanotrack", "v3")


def test_the_confidence_is_a_logistic_model_of_the_maps_peak_and_mean():
    conf = LogitConfidence(peak=0.5, mean=-1.0, bias=-2.0)
    margin = np.array([[-8.0, -6.0], [-7.0, 9.0]])        # one strong peak over a low background
    z = 0.5 * 9.0 - 1.0 * margin.mean() - 2.0
    assert conf(margin) == pytest.approx(1 / (1 + math.exp(-z)))
    flat = np.full((2, 2), 3.0)                            # middling everywhere: a look-alike field
    assert conf(flat) < conf(margin)
    for extreme in (-1e300, 1e300):          # no overflow whatever a broken head emits
        assert 0.0 <= conf(np.full((2, 2), extreme)) <= 1.0


def test_the_bundled_files_carry_their_confidence_and_lost_rule():
    tracker = open_nanotrack(BUNDLED_V3, threads=1)
    meta = nanotrack_meta(BUNDLED_V3, "v3", tracker.engine.files_sha256)
    assert meta.source.endswith(os.path.join("nanotrack", "v3.json")) and meta.confidence is not None
    assert 0.0 < meta.lost_score_threshold < 1.0 and meta.lost_frames >= 1
    assert tracker.calibration == meta
    assert (tracker.lost_score_threshold, tracker.lost_frames) == (meta.lost_score_threshold, meta.lost_frames)
    # Other V3 files (a retrained head: other logits) do not get the numbers fitted for upstream's.
    other = nanotrack_meta(None, "v3", (tracker.engine.files_sha256[0], "0" * 64))
    assert other.confidence is None and other.source == ""
    # A user's copy of the same upstream files gets the same numbers; the fit's own record says how.
    with open(meta.source) as f:
        fitted = json.load(f)["fitted"]
    assert "validation" in fitted["rule_chosen_on"] and "validation" not in fitted["corpus"]


def test_a_folder_sidecar_overrides_the_packaged_numbers(tmp_path):
    for name in ("nanotrack_backbone.onnx", "nanotrack_head.onnx"):
        os.symlink(os.path.join(BUNDLED_V3, name), tmp_path / name)
    (tmp_path / SIDECAR).write_text(json.dumps({"version": "v3", "lost_score_threshold": 0.6, "lost_frames": 7}))
    tracker = open_nanotrack(str(tmp_path), threads=1)
    assert (tracker.lost_score_threshold, tracker.lost_frames) == (0.6, 7)
    assert tracker.calibration.confidence is None     # no confidence in it: the upstream score


@pytest.mark.parametrize("raw, match", [
    ({"confidence": {"peak": "a", "mean": 0, "bias": 0}}, "confidence.peak"),
    ({"confidence": {"peak": float("nan"), "mean": 0, "bias": 0}}, "confidence.peak"),
    ({"confidence": [1, 2, 3]}, "confidence must be an object"),
    ({"lost_score_threshold": 1.5}, "lost_score_threshold"),
    ({"lost_frames": 0}, "lost_frames"),
    ({"lost_frames": True}, "lost_frames"),
    ({"version": "v2"}, "is for NanoTrack 'v2'"),
    ({"hold_low_score_box": "yes"}, "hold_low_score_box"),
])
def test_bad_metadata_is_one_line_naming_the_field(raw, match):
    with pytest.raises(ConfigError, match=match) as err:
        parse_meta(raw, "v3", "x/edge-track.json")
    assert "\n" not in str(err.value) and "x/edge-track.json" in str(err.value)


def test_metadata_that_is_not_a_small_regular_json_file_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_meta(str(fifo))                      # never opened: a FIFO would block the reader
    big = tmp_path / "big.json"
    big.write_text(" " * (1 << 20))
    with pytest.raises(ConfigError, match="more than a metadata file"):
        read_meta(str(big))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_meta(str(bad))


def test_the_score_falls_and_the_state_goes_lost_when_the_target_vanishes():
    """A textured square tracked, then gone: TRACKING with a high confidence while it is there,
    LOST within a few frames of its going (the upstream score stays near 1 on the background)."""
    frames, boxes = make_clip_frames(n=50, size=(320, 240), box=(100, 80, 40, 40), step=(2, 1), seed=3)
    empty = make_clip_frames(n=1, size=(320, 240), box=(0, 0, 1, 1), seed=3)[0][0]
    tracker = open_nanotrack(BUNDLED_V3, threads=1)
    tracker.init(frames[0], boxes[0])
    seen = [tracker.update(f) for f in frames[1:25]]
    assert all(r.state is TrackState.TRACKING for r in seen)
    assert min(r.score for r in seen) > tracker.lost_score_threshold
    gone = [tracker.update(empty) for _ in range(10)]
    assert gone[-1].state is TrackState.LOST
    first_lost = next(i for i, r in enumerate(gone) if r.state is TrackState.LOST)
    assert first_lost < tracker.lost_frames + 3
    assert max(r.score for r in gone[first_lost:]) < tracker.lost_score_threshold


def test_the_confidence_separates_tracked_from_failed_frames_on_the_dev_set():
    """On real video the mean confidence of tracked frames is far above that of failed ones (the
    upstream score: 1.00 against 0.92 on the validation split). A margin, not one run's numbers."""
    from edge.camera.folder import read_rgb
    from edge.evaluation.datasets import find_sequences
    from edge.evaluation.metrics import iou

    tracker = open_nanotrack(BUNDLED_V3, threads=1)
    tracked, failed = [], []
    for seq in find_sequences(shared_path("data", "sequences")):
        tracker.init(read_rgb(seq.frames[0]), seq.gt[0])
        for i in range(1, len(seq)):
            r = tracker.update(read_rgb(seq.frames[i]))
            o = iou(np.array([r.box]), seq.gt[i:i + 1])[0]
            (tracked if o > 0.5 else failed if o < 0.1 else []).append(r.score)
    assert len(tracked) > 300 and np.mean(tracked) > 0.6
    assert failed, "the dev set has failed frames for NanoTrack V3 (MotorRolling, Surfing06)"
    assert np.mean(failed) < np.mean(tracked) - 0.3
