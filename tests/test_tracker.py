"""Tracker bookkeeping against a scripted engine: templates, thresholds, LOST, bad outputs."""

import math

import numpy as np
import pytest

from edge.engines.base import EngineOutput
from edge.errors import ConfigError
from edge.model_meta import ModelMeta
from edge.tracker import Tracker, TrackState

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
    tracker = Tracker(engine, **kwargs)
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
        Tracker(engine).init(frame(1), (10, 10, 0, 5))
    with pytest.raises(ConfigError):
        Tracker(engine).init(frame(1), (500, 500, 10, 10))
    with pytest.raises(ConfigError, match="search_factor"):
        Tracker(engine, search_factor=-2.0)
    with pytest.raises(RuntimeError):
        Tracker(engine).update(frame(1))


def test_init_box_partly_outside_is_clipped():
    tracker = Tracker(ScriptedEngine([0.9]))
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
        Tracker(ScriptedEngine([0.9]), size_update_rate=1.5)


def test_unconfident_boxes_are_not_followed():
    # The network points far right; below the lost threshold (0.3) the box holds, above it moves.
    engine = ScriptedEngine([0.1, 0.1, 0.9], box=(1.0, 0.5, 0.5, 0.5))
    _, results = run(engine, 3)
    assert results[0].box == results[1].box == pytest.approx((40, 40, 20, 20))
    assert results[2].box[0] > 50
