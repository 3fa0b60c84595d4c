"""Two checkpoints interpolated (train/weights/average.py), across search grids at one pixel scale."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _saved(tmp_path, preset, seed, name):
    from train.config import TrainConfig
    from train.models.model import build_model
    from train.models.presets import get_preset
    from train.weights.checkpoint import save_checkpoint

    model = build_model(get_preset(preset), seed=seed)
    path = str(tmp_path / name)
    save_checkpoint(path, model, 1, TrainConfig(stage="frozen_stem", variant=preset))
    return model.state_dict(), path


def test_average_is_the_straight_line_and_loads(tmp_path):
    from train.weights.average import main
    from train.weights.checkpoint import load_model

    a, pa = _saved(tmp_path, "tiny", 0, "a.pth.tar")
    b, pb = _saved(tmp_path, "tiny", 1, "b.pth.tar")
    out = str(tmp_path / "avg.pth.tar")
    assert main([pa, pb, "--alpha", "0.25", "--output", out]) == 0
    model, _ = load_model(out)
    got = model.state_dict()
    assert model.cfg.name == "tiny"
    moved = 0
    for key, vb in b.items():
        assert torch.allclose(got[key], 0.75 * a[key] + 0.25 * vb, atol=1e-7), key
        moved += not torch.equal(a[key], vb)
    assert moved > 10          # the two seeds really differ, so the check above means something


def test_average_lays_the_start_out_for_the_finetunes_grid(tmp_path):
    from train.models.presets import get_preset
    from train.weights.average import average
    from train.weights.regrid import regrid_state_dict

    a, pa = _saved(tmp_path, "nanostem", 0, "a.pth.tar")
    b, pb = _saved(tmp_path, "nanostem224", 1, "b.pth.tar")
    state, cfg = average(pa, pb, 0.0)
    assert cfg.name == "nanostem224"
    expected = regrid_state_dict(a, get_preset("nanostem224"))
    assert state.keys() == b.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)
    state, _ = average(pa, pb, 1.0)
    assert all(torch.equal(state[k], b[k]) for k in state)


@pytest.mark.parametrize("alpha", ["-0.1", "1.5"])
def test_bad_alpha_and_mismatched_networks_are_one_line_errors(tmp_path, alpha, capsys):
    from train.weights.average import main

    _, pa = _saved(tmp_path, "tiny", 0, "a.pth.tar")
    _, pb = _saved(tmp_path, "tiny", 1, "b.pth.tar")
    _, pn = _saved(tmp_path, "nanostem", 1, "n.pth.tar")
    out = str(tmp_path / "o.pth.tar")
    assert main([pa, pb, "--alpha", alpha, "--output", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--alpha" in err
    assert main([pa, pn, "--alpha", "0.5", "--output", out]) == 2     # another network: no line between them
    assert capsys.readouterr().err.count("\n") == 1
