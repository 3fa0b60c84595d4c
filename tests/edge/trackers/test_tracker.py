"""MixFormerTracker bookkeeping against a scripted engine: templates, thresholds, LOST, bad outputs."""

import math
import os

import numpy as np
import pytest

from edge.engines.base import EngineOutput
from edge.engines.model_meta import ModelMeta
from edge.errors import ConfigError
from edge.trackers.mixformer import MixFormerTracker
from edge.trackers.state import TrackState

META = ModelMeta(preset="fake", template_size=16, search_size=32, search_factor=2.0, bins=8,
                 update_interval=4, lost_score_threshold=0.3, lost_frames=3)


def logit(p):
    return math.log(p / (1 - p))


class ScriptedEngine:
    """Returns a centred box of the previous size and the scripted scores, records templates."""

    name = "scripted"

    def __init__(self, scores, box=(0.5, 0.5, 0.5, 0.5), meta=META):
        self.meta = meta
        self.scores = list(scores)
        self.box = np.array(box, np.float32)
        self.templates = []   # (frame value of template, frame value of online template)
        self.runs = 0

    def set_templates(self, template, online_template):
        # Frames are flat grey levels, so a normalised template identifies its frame.
        value = lambda t: int(round((t[0, 0, 8, 8] * 0.229 + 0.485) * 255))
        self.templates.append((value(template), value(online_template)))

    def run(self, search):
        assert search.shape == (1, 3, 32, 32) and search.dtype == np.float32
        score = self.scores[self.runs]
        self.runs += 1
        if isinstance(score, tuple):
            return EngineOutput(np.array(score[0], np.float32), score[1])
        return EngineOutput(self.box.copy(), logit(score))


def frame(value):
    return np.full((100, 100, 3), value, np.uint8)


def run(engine, n, **kwargs):
    tracker = MixFormerTracker(engine, **kwargs)
    tracker.init(frame(10), (40, 40, 20, 20))
    return tracker, [tracker.update(frame(10 + i)) for i in range(1, n + 1)]


def test_online_template_is_best_crop_above_threshold_of_each_interval():
    # frames 1..4: best > 0.5 is frame 2 (0.9); frames 5..8: none above 0.5 -> first template.
    engine = ScriptedEngine([0.6, 0.9, 0.7, 0.4, 0.5, 0.2, 0.45, 0.1, 0.8, 0.55, 0.6, 0.3])
    run(engine, 12)
    assert engine.templates == [(10, 10), (10, 12), (10, 10), (10, 19)]


def test_equal_score_does_not_replace_best():
    engine = ScriptedEngine([0.7, 0.7, 0.6, 0.6])
    run(engine, 4)
    assert engine.templates[-1] == (10, 11)


def test_update_interval_override():
    # Equal scores do not replace the interval's best, so the first frame of each pair wins.
    engine = ScriptedEngine([0.9] * 6)
    run(engine, 6, update_interval=2)
    assert engine.templates == [(10, 10), (10, 11), (10, 13), (10, 15)]


def test_lost_after_n_low_frames_and_recovery():
    engine = ScriptedEngine([0.9, 0.2, 0.1, 0.2, 0.1, 0.8, 0.2])
    _, results = run(engine, 7)
    assert [r.state for r in results] == [TrackState.TRACKING] * 3 + [TrackState.LOST] * 2 + [TrackState.TRACKING] * 2


@pytest.mark.parametrize("bad", [((np.nan, 0.5, 0.5, 0.5), 1.0), ((0.5, 0.5, 0.5, 0.5), math.inf),
                                 ((0.5, -np.inf, 0.5, 0.5), 0.0), ((0.5, 0.5, 0.5, 0.5), math.nan)])
def test_non_finite_output_is_lost_and_never_a_box(bad):
    engine = ScriptedEngine([0.9, bad, 0.9])
    tracker, results = run(engine, 3)
    good, broken, after = results
    assert broken.state is TrackState.LOST and not broken.valid and broken.score == 0.0
    assert broken.box == good.box and all(math.isfinite(v) for v in broken.box)
    assert after.state is TrackState.TRACKING and after.valid


def test_box_follows_the_network_and_is_clipped():
    # A prediction far right of the crop pushes the box out of the frame: it must be clipped.
    engine = ScriptedEngine([0.9] * 5, box=(1.5, 0.5, 0.5, 0.5))
    _, results = run(engine, 5)
    for r in results:
        x, y, w, h = r.box
        assert 0 <= x <= 90 and w >= 10 and x + w <= 100 + 1e-9


def test_centred_prediction_keeps_the_box():
    # A crop of side 40 (factor 2 on a 20 px box); w = 0.5 * 40 = 20: the box must not move.
    engine = ScriptedEngine([0.9] * 3)
    _, results = run(engine, 3)
    for r in results:
        assert r.box == pytest.approx((40, 40, 20, 20), abs=1e-5)


def test_bad_init_and_overrides():
    engine = ScriptedEngine([0.9])
    with pytest.raises(ConfigError):
        MixFormerTracker(engine).init(frame(1), (10, 10, 0, 5))
    with pytest.raises(ConfigError):
        MixFormerTracker(engine).init(frame(1), (500, 500, 10, 10))
    with pytest.raises(ConfigError, match="search_factor"):
        MixFormerTracker(engine, search_factor=-2.0)
    with pytest.raises(RuntimeError):
        MixFormerTracker(engine).update(frame(1))


def test_init_box_partly_outside_is_clipped():
    tracker = MixFormerTracker(ScriptedEngine([0.9]))
    result = tracker.init(frame(1), (-20, 90, 50, 50))
    assert result.box == (0.0, 90.0, 30.0, 10.0)


def test_size_update_rate_smooths_size_but_not_centre():
    # The network says: twice the size, shifted right by a quarter crop (10 px at crop side 40).
    engine = ScriptedEngine([0.9] * 2, box=(0.75, 0.5, 1.0, 1.0))
    _, full = run(engine, 1)
    engine = ScriptedEngine([0.9] * 2, box=(0.75, 0.5, 1.0, 1.0))
    _, half = run(engine, 1, size_update_rate=0.5)
    x, y, w, h = full[0].box
    assert (w, h) == pytest.approx((40, 40)) and x + w / 2 == pytest.approx(60)
    x, y, w, h = half[0].box
    assert (w, h) == pytest.approx((30, 30)) and (x + w / 2, y + h / 2) == pytest.approx((60, 50))
    with pytest.raises(ConfigError, match="size_update_rate"):
        MixFormerTracker(ScriptedEngine([0.9]), size_update_rate=1.5)


def test_unconfident_boxes_are_not_followed():
    # The network points far right; below the lost threshold (0.3) the box holds, above it moves.
    engine = ScriptedEngine([0.1, 0.1, 0.9], box=(1.0, 0.5, 0.5, 0.5), meta=META.replace(hold_low_score_box=True))
    _, results = run(engine, 3)
    assert results[0].box == results[1].box == pytest.approx((40, 40, 20, 20))
    assert results[2].box[0] > 50
    # The official loop (the default) follows every box, confident or not.
    _, results = run(ScriptedEngine([0.1, 0.1, 0.9], box=(1.0, 0.5, 0.5, 0.5)), 3)
    assert results[0].box[0] > 50 and results[1].box[0] > results[0].box[0]
    assert MixFormerTracker(ScriptedEngine([0.1]), hold_low_score_box=True).meta.hold_low_score_box


def spec_loop_boxes(engine, frames, box):
    """Spec section 4.2 steps 1-3 as written: crop around the last state, run, map back, clip;
    the new state is always accepted (no score gating). Frames < update_interval, so the online
    template stays the first one."""
    from edge.trackers.crop import sample_target
    from edge.trackers.geometry import clip_box, map_box_back
    from edge.trackers.preprocess import Normalizer

    meta = engine.meta
    normalize = Normalizer(meta)
    template = normalize(sample_target(frames[0], box, meta.template_factor, meta.template_size)[0])
    engine.set_templates(template, template)
    state, boxes = tuple(float(v) for v in box), []
    for image in frames[1:]:
        patch, window = sample_target(image, state, meta.search_factor, meta.search_size)
        out = engine.run(normalize(patch))
        state = clip_box(map_box_back(out.box_cxcywh, state, window, meta.search_size), *image.shape[:2])
        boxes.append(state)
    return boxes


def test_official_s_model_follows_low_score_boxes_like_the_spec_loop(s_model):
    """Weights in the official layout (S preset): every frame below the lost threshold (raised to
    1.0 here), and the box still equals the spec loop's, frame by frame."""
    from conftest import make_clip_frames
    from edge.engines import open_engine

    _, path, _ = s_model
    frames, gt = make_clip_frames(8, size=(320, 240), box=(120, 90, 48, 40), step=(6, 3))
    engine = open_engine(path, threads=1)
    assert engine.meta.hold_low_score_box is False
    tracker = MixFormerTracker(engine, lost_score_threshold=1.0)
    tracker.init(frames[0], gt[0])
    results = [tracker.update(f) for f in frames[1:]]
    assert all(r.score < 1.0 for r in results) and results[-1].state == TrackState.LOST
    expected = spec_loop_boxes(open_engine(path, threads=1), frames, gt[0])
    np.testing.assert_allclose([r.box for r in results], expected, rtol=0, atol=1e-6)
    assert results[-1].box != pytest.approx(tuple(gt[0]), abs=1.0)      # it did move


def test_bundled_model_holds_the_last_confident_box():
    """The bundled model's metadata predates the field; its NanoTrack stem selects the hold policy."""
    import cv2

    from edge.engines import open_engine
    from edge.evaluation.datasets import read_boxes
    from edge.sample import BUNDLED_MODEL, SAMPLE_FRAMES, SAMPLE_GROUNDTRUTH

    engine = open_engine(BUNDLED_MODEL, threads=1)
    assert engine.meta.hold_low_score_box is True
    gt = read_boxes(SAMPLE_GROUNDTRUTH)
    names = sorted(os.listdir(SAMPLE_FRAMES))[:6]
    tracker = MixFormerTracker(engine, frame_color_order="BGR", lost_score_threshold=1.0)
    start = tracker.init(cv2.imread(os.path.join(SAMPLE_FRAMES, names[0])), gt[0]).box
    results = [tracker.update(cv2.imread(os.path.join(SAMPLE_FRAMES, n))) for n in names[1:]]
    assert all(r.score < 1.0 and r.box == start for r in results)


def test_metadata_without_the_hold_field_reads_the_stem():
    official = META.replace(extra={"stem": "patch"}).to_json().replace('"hold_low_score_box": false, ', "")
    assert "hold_low_score_box" not in official
    assert ModelMeta.from_json(official).hold_low_score_box is False
    nanostem = META.replace(extra={"stem": "nanotrack"}).to_json().replace('"hold_low_score_box": false, ', "")
    assert ModelMeta.from_json(nanostem).hold_low_score_box is True
    with pytest.raises(Exception, match="hold_low_score_box"):
        META.replace(hold_low_score_box="yes")
