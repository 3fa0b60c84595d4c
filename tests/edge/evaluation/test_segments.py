"""Temporal robustness evaluation: a sequence tracked from several starting frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_clip_frames, write_sequence
from edge.cli.main import main
from edge.errors import ConfigError
from edge.evaluation.datasets import Sequence
from edge.evaluation.segments import MIN_FRAMES, temporal_segments


def _sequence(n, absent=()):
    gt = np.arange(4 * n, dtype=float).reshape(n, 4)
    flags = np.zeros(n, bool)
    flags[list(absent)] = True
    return Sequence(name="s", frames=[f"{i}.png" for i in range(n)], gt=gt, absent=flags)


def test_segments_start_evenly_and_keep_their_ground_truth():
    segs = temporal_segments(_sequence(30), 3)
    assert [s.name for s in segs] == ["s", "s@10", "s@20"]
    for seg, start in zip(segs, (0, 10, 20)):
        assert seg.frames[0] == f"{start}.png" and len(seg) == 30 - start
        assert np.array_equal(seg.gt[0], np.arange(4 * start, 4 * start + 4))   # initialised from the truth there


def test_segments_skip_absent_starts_and_short_tails():
    segs = temporal_segments(_sequence(30, absent=(10, 11)), 3)
    assert [s.name for s in segs] == ["s", "s@12", "s@20"]
    n = 2 * MIN_FRAMES + MIN_FRAMES // 2          # the third start leaves fewer than MIN_FRAMES
    assert [s.name for s in temporal_segments(_sequence(n), 3)] == ["s", f"s@{n // 3}"]
    assert [s.name for s in temporal_segments(_sequence(30), 1)] == ["s"]
    assert [len(s) for s in temporal_segments(_sequence(5), 3)] == [5]      # a short sequence still counts once
    with pytest.raises(ConfigError, match="at least 1"):
        temporal_segments(_sequence(30), 0)


def test_eval_starts_scores_every_run(tmp_path, tiny_model_path, capsys):
    root = tmp_path / "seqs"
    frames, gt = make_clip_frames(24, seed=0)
    write_sequence(str(root / "a"), frames, gt)
    js = str(tmp_path / "r.json")
    assert main(["eval", "--sequences", str(root), "--model", tiny_model_path, "--starts", "2", "--json", js]) == 0
    report = json.load(open(js))
    assert [(s["name"], s["frames"]) for s in report["sequences"]] == [("a", 24), ("a@12", 12)]
    assert report["mean"]["auc"] == pytest.approx(np.mean([s["auc"] for s in report["sequences"]]))
    # Saved results are one run per sequence: --starts has nothing to apply to.
    capsys.readouterr()
    code = main(["eval", "--sequences", str(root), "--results", str(tmp_path), "--starts", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--starts" in err
