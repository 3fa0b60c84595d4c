"""The LOST rule chosen for a MixFormerV2 model: the replayed streak rule, the budget threshold, the
pick among rules, and the whole tool on a real exported model and a generated sequence."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import square_sequence
from train.measure.lost_rule import (
    Scored,
    budget_threshold,
    choose,
    lost_shares,
    main,
    pick_rule,
    streak_lost,
    write_rule,
)


def test_the_streak_rule_needs_frames_in_a_row_and_restarts_with_each_run():
    conf = np.array([0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1])
    run = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    lost = streak_lost(conf, run, threshold=0.5, lost_frames=2)
    # frame 4 is the second low one in a row; run 1 starts counting again at frame 5
    assert lost.tolist() == [False, True, False, False, True, False, True, True]


def test_the_budget_threshold_is_the_highest_that_keeps_the_tracked_frames_within_it():
    rng = np.random.default_rng(0)
    tracked = rng.uniform(0.4, 1.0, 400)
    failed = rng.uniform(0.0, 0.5, 100)
    conf = np.concatenate([tracked, failed])
    iou = np.concatenate([np.full(400, 0.8), np.full(100, 0.0)])
    scored = Scored(conf, iou, np.arange(500))          # one frame per run: no streaks across frames
    budget = 0.01
    t = budget_threshold(scored, 1, budget)
    assert lost_shares(streak_lost(conf, scored.run, t, 1), iou)[1] <= budget
    higher = np.unique(np.round(conf, 4))
    higher = higher[higher > t][0]
    assert lost_shares(streak_lost(conf, scored.run, higher, 1), iou)[1] > budget
    # and it catches most of the failures, which sit below the tracked frames
    assert lost_shares(streak_lost(conf, scored.run, t, 1), iou)[0] > 0.5


def test_a_rule_whose_lost_state_works_beats_a_better_auc_whose_does_not():
    rows = [{"lost_frames": 1, "auc": 0.60, "lost_on_failed": 0.05, "lost_on_tracked": 0.0},
            {"lost_frames": 2, "auc": 0.55, "lost_on_failed": 0.60, "lost_on_tracked": 0.004},
            {"lost_frames": 3, "auc": 0.58, "lost_on_failed": 0.70, "lost_on_tracked": 0.02}]
    rule, why = pick_rule(rows, 0.005)
    assert rule["lost_frames"] == 2 and "works" in why
    # none works: the closest to working within the budget, not the best AUC
    near = {"lost_frames": 4, "auc": 0.57, "lost_on_failed": 0.35, "lost_on_tracked": 0.003}
    rule, why = pick_rule([rows[0], rows[2], near], 0.005)
    assert rule["lost_frames"] == 4 and why.startswith("none works")
    # none keeps the budget: the one that cuts least into good tracking, not the best AUC
    rule, why = pick_rule([rows[2], {**rows[0], "lost_on_tracked": 0.03}], 0.005)
    assert rule["lost_frames"] == 3 and why.startswith("none keeps the budget")


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_the_tool_chooses_on_a_real_model_and_writes_the_rule_into_a_copy(tiny_model_path, tmp_path):
    from edge.build import open_tracker_at
    from edge.engines.model_meta import step_path_for
    from train.export.onnx_files import load_with_meta

    folder = square_sequence(tmp_path / "val", 30)
    opener = lambda threshold, frames: open_tracker_at(tiny_model_path, lost_score_threshold=threshold,
                                                       lost_frames=frames)
    rule, why, tried = choose(opener, folder, good_budget=0.005)
    assert [r["lost_frames"] for r in tried] == [1, 2, 3, 4, 5]
    assert 0.0 <= rule["lost_score_threshold"] <= 1.0 and why
    before = _digest(tiny_model_path)
    out = str(tmp_path / "out" / "with-rule.onnx")
    write_rule(tiny_model_path, out, rule, {"tool": "test"})
    assert _digest(tiny_model_path) == before
    _, meta = load_with_meta(out)
    assert (meta.lost_score_threshold, meta.lost_frames) == (rule["lost_score_threshold"], rule["lost_frames"])
    assert meta.extra["lost_rule"] == {"tool": "test"}
    assert meta.step_file == "with-rule.step.onnx"                # the export has its cached step graph
    assert load_with_meta(step_path_for(out))[1] == meta
    tracker = open_tracker_at(out)
    assert tracker.meta.lost_frames == rule["lost_frames"]


def test_the_tool_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "none.onnx"), "--validation", str(tmp_path), "--output", str(tmp_path / "o.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.onnx" in err[0]


@pytest.mark.parametrize("target", ["the model", "its step graph", "the model by another path"])
def test_the_tool_never_writes_over_its_input(tiny_model_path, tmp_path, target):
    import os
    import shutil

    from edge.engines.model_meta import step_path_for
    from edge.errors import ModelError
    from train.export.onnx_files import load_with_meta

    model = str(tmp_path / os.path.basename(tiny_model_path))
    step = step_path_for(model)
    shutil.copy(tiny_model_path, model)
    shutil.copy(step_path_for(tiny_model_path), step)
    (tmp_path / "sub").mkdir()
    before = {p: _digest(p) for p in (model, step)}
    output = {"the model": model, "its step graph": step,
              "the model by another path": str(tmp_path / "sub" / ".." / os.path.basename(model))}[target]
    with pytest.raises(SystemExit) as stop:
        main([model, "--validation", str(tmp_path), "--output", output])
    assert stop.value.code == 2
    with pytest.raises(ModelError, match="would overwrite"):
        write_rule(model, output, {"lost_score_threshold": 0.5, "lost_frames": 2}, {})
    assert {p: _digest(p) for p in before} == before
    load_with_meta(model)
