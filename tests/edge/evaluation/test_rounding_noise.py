"""Runs under sub-visible input noise: how much of an AUC is rounding (edge/evaluation/rounding_noise.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_clip_frames, write_sequence
from edge.cli.main import main
from edge.engines.base import EngineOutput
from edge.engines.model_meta import ModelMeta
from edge.evaluation.rounding_noise import GREY_LEVELS, RoundingNoise, spread


class Recorder:
    """An engine that keeps what it was given."""

    name = "recorder"

    def __init__(self, meta):
        self.meta, self.searches, self.templates = meta, [], []

    def set_templates(self, template, online_template):
        self.templates.append((template, online_template))

    def run(self, search):
        self.searches.append(search.copy())
        return EngineOutput(np.array([0.5, 0.5, 0.2, 0.2], np.float32), 3.0)

    def close(self):
        raise AssertionError("the wrapper must not close the caller's engine")


def _meta(**kw):
    return ModelMeta(preset="tiny", template_size=8, search_size=16, search_factor=4.0, bins=8, **kw)


@pytest.mark.parametrize("std", [(0.229, 0.224, 0.225), (1 / 255,) * 3])
def test_noise_is_a_thousandth_of_a_grey_level_per_channel(std):
    inner = Recorder(_meta(std=std))
    engine = RoundingNoise(inner, seed=1)
    search = np.zeros((1, 3, 16, 16), np.float32)      # around 0 float32 holds the noise exactly
    for _ in range(20):
        engine.run(search)
    deltas = np.stack(inner.searches) - search
    bound = GREY_LEVELS / (255.0 * np.asarray(std)).reshape(1, 3, 1, 1)
    per_channel = np.abs(deltas).max(axis=(0, 1, 3, 4))
    assert np.all(per_channel <= bound.ravel() * (1 + 1e-3))
    assert np.all(per_channel >= 0.9 * bound.ravel())          # uniform over the whole band, not a no-op
    assert not np.array_equal(inner.searches[0], inner.searches[1])   # fresh noise every frame


def test_seeds_repeat_and_differ_and_templates_pass_through():
    def draws(seed):
        inner = Recorder(_meta())
        engine = RoundingNoise(inner, seed)
        t = np.ones((1, 3, 8, 8), np.float32)
        engine.set_templates(t, 2 * t)
        out = engine.run(np.zeros((1, 3, 16, 16), np.float32))
        assert inner.templates[0][0] is t and out.score_logit == 3.0
        engine.close()
        return inner.searches[0]

    assert np.array_equal(draws(3), draws(3))
    assert not np.array_equal(draws(3), draws(4))


def test_spread_over_runs():
    runs = np.array([[0.6, 0.2], [0.8, 0.4], [0.7, 0.0]])
    sp = spread(runs)
    assert np.allclose(sp["mean"], [0.7, 0.2]) and np.allclose(sp["min"], [0.6, 0.0])
    assert np.allclose(sp["max"], [0.8, 0.4])
    assert np.allclose(sp["overall"], [0.45, 0.35, 0.6])      # per-run means 0.4, 0.6, 0.35
    with pytest.raises(ValueError):
        spread(np.zeros(3))


def test_eval_noise_runs_report_a_band_around_the_plain_run(tmp_path, tiny_model_path, capsys):
    root = tmp_path / "seqs"
    for i, name in enumerate("ab"):
        frames, gt = make_clip_frames(16, seed=i)
        write_sequence(str(root / name), frames, gt)
    plain, noisy = str(tmp_path / "plain.json"), str(tmp_path / "noisy.json")
    assert main(["eval", "--sequences", str(root), "--model", tiny_model_path, "--json", plain]) == 0
    assert main(["eval", "--sequences", str(root), "--model", tiny_model_path, "--noise-runs", "2",
                 "--json", noisy]) == 0
    out = capsys.readouterr().out
    assert "rounding noise: 2 more runs" in out
    p, n = json.load(open(plain)), json.load(open(noisy))
    # The first run is the plain one, untouched by the noisy runs after it.
    assert [s["auc"] for s in n["sequences"]] == [s["auc"] for s in p["sequences"]]
    assert "noise" not in p and n["noise"]["runs"] == 2
    for s in [*n["noise"]["sequences"], n["noise"]["mean"]]:
        assert 0.0 <= s["auc_min"] <= s["auc_mean"] <= s["auc_max"] <= 1.0
    assert [s["name"] for s in n["noise"]["sequences"]] == ["a", "b"]


@pytest.mark.parametrize("extra", [["--results", "."], []])
def test_eval_noise_runs_refuses_what_it_cannot_perturb(tmp_path, extra, capsys):
    root = tmp_path / "seqs"
    frames, gt = make_clip_frames(12, seed=0)
    write_sequence(str(root / "a"), frames, gt)
    runs = "-1" if not extra else "2"
    code = main(["eval", "--sequences", str(root), "--noise-runs", runs, *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--noise-runs" in err


def test_eval_noise_runs_on_an_opencv_peer_say_its_plain_run_is_its_band(tmp_path, capsys):
    """OpenCV's trackers take the frame, not a crop: no noise reaches them, and eval says so instead
    of inventing a band (the validation split's command runs every tracker the same way)."""
    import cv2

    if not hasattr(cv2, "TrackerCSRT"):
        pytest.skip("needs opencv-contrib for CSRT (pip install -e '.[peers]')")
    root = tmp_path / "seqs"
    frames, gt = make_clip_frames(12, seed=0)
    write_sequence(str(root / "a"), frames, gt)
    out = tmp_path / "r.json"
    assert main(["eval", "--sequences", str(root), "--noise-runs", "2", "--tracker", "csrt", "--json", str(out)]) == 0
    assert "its plain run stands for the band" in capsys.readouterr().err
    assert "noise" not in json.loads(out.read_text())

