"""Weights moved to a preset with a tighter search window (train/weights/regrid.py), and the frozen-stem
pool recipe built from the config."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import NANOTRACK_DIR, shared_path  # noqa: E402
from edge.errors import CheckpointError  # noqa: E402


def _saved_nanostem(tmp_path, seed=0):
    from train.models.model import build_model
    from train.models.presets import get_preset

    model = build_model(get_preset("nanostem"), seed=seed)
    path = tmp_path / "nanostem.pth"
    torch.save({"net": model.state_dict()}, path)
    return model, str(path)


@pytest.mark.parametrize("variant,grid,bins", [("nanostem224", 14, 56), ("nanostem192", 12, 48)])
def test_regridded_weights_keep_their_pixel_meaning(tmp_path, variant, grid, bins):
    from train.models.model import sincos_pos_embed_2d
    from train.weights.regrid import BIN_KEYS, load_regridded

    source, path = _saved_nanostem(tmp_path)
    model, _ = load_regridded(path, variant)
    assert model.cfg.search_grid == grid and model.cfg.bins == bins
    assert torch.equal(model.backbone.pos_embed_s[0], sincos_pos_embed_2d(128, grid))
    # Bin i starts at the same pixel in both crops, so the kept rows mean the same edge positions.
    assert torch.equal(model.box_head.bin_pos, source.box_head.bin_pos[:bins])
    old, new = source.state_dict(), model.state_dict()
    for key in new:
        if key in BIN_KEYS:
            assert torch.equal(new[key], old[key][:bins])
        elif key != "backbone.pos_embed_s":
            assert torch.equal(new[key], old[key]), key
    # A search token at grid cell (r, c) carries the same position code on both grids.
    r, c = 5, 9
    assert torch.equal(model.backbone.pos_embed_s[0, r * grid + c], source.backbone.pos_embed_s[0, r * 16 + c])


def test_regrid_refuses_another_bin_stride(tmp_path):
    from train.models.presets import get_preset
    from train.weights.regrid import BIN_KEYS, regrid_state_dict

    source, _ = _saved_nanostem(tmp_path)
    state = {k: v[:60] if k in BIN_KEYS else v for k, v in source.state_dict().items()}   # 256 px / 60 bins
    with pytest.raises(CheckpointError, match="keeps the pixel stride"):
        regrid_state_dict(state, get_preset("nanostem224"))
    wider = dataclasses.replace(get_preset("nanostem"), name="wide", search_size=320, bins=80)
    with pytest.raises(CheckpointError, match="needs 80 bins"):
        regrid_state_dict(source.state_dict(), wider)


def test_regrid_init_without_init_is_a_config_error(tmp_path):
    from edge.errors import ConfigError
    from train.config import load_train_config

    path = tmp_path / "c.yaml"
    path.write_text("stage: frozen_stem\nvariant: nanostem224\nregrid_init: true\n"
                    "teacher: {kind: nanotrack, path: x}\ndata: {sources: [{path: x, kind: images}]}\n")
    with pytest.raises(ConfigError, match="regrid_init .* set init"):
        load_train_config(str(path))


def test_pool_recipe_carries_every_data_setting(tmp_path):
    """The pool spec is built from the config: a setting dropped on the way (as once happened to
    same_frame_negative_p) would silently train another recipe."""
    from train.config import load_train_config
    from train.data.feature_pool import PoolSpec
    from train.models.presets import get_preset
    from train.trainer import pool_spec

    path = tmp_path / "c.yaml"
    path.write_text("stage: frozen_stem\nvariant: nanostem224\nteacher: {kind: nanotrack, path: x}\n"
                    "data: {sources: [{path: x, kind: images}], negative_p: 0.17, same_frame_negative_p: 0.35,"
                    " log_aspect: 0.4, search_factor: 3.25}\n")
    cfg = load_train_config(str(path))
    spec = pool_spec(cfg, get_preset(cfg.variant))
    assert (spec.search_size, spec.bins) == (224, 56)
    assert (spec.negative_p, spec.same_frame_negative_p, spec.log_aspect, spec.search_factor) == (0.17, 0.35, 0.4, 3.25)
    # Every pool field the data config also names comes from the config (the jitters are the pool's own).
    own = {"center_jitter", "scale_jitter"}
    for f in dataclasses.fields(PoolSpec):
        if f.name in own or not hasattr(cfg.data, f.name):
            continue
        assert getattr(spec, f.name) == getattr(cfg.data, f.name) or (f.name == "search_factor"), f.name


def test_regridded_frozen_stem_training_reads_the_teacher_on_its_own_grid(tmp_path):
    """nanostem224 from nanostem weights: NanoTrack's head still sees its 16x16 grid, and its dense
    answer reaches the student resampled to 14x14, its edges over the student's 56 bins. Every
    epoch's weights are kept when asked."""
    shared_path("models", "opencv", "nanotrack_head_sim.onnx")
    from train.config import load_train_config
    from train.trainer import train

    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        cv2.imwrite(str(photos / f"p{k}.png"),
                    cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (7, 7), 0))
    _, init = _saved_nanostem(tmp_path)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(f"""
stage: frozen_stem
variant: nanostem224
init: {init}
regrid_init: true
output: {tmp_path / 'run'}
data:
  sources: [{{path: {photos}, kind: images, weight: 1.0}}]
  pool_samples: 12
  samples_per_epoch: 8
teacher: {{kind: nanotrack, path: {NANOTRACK_DIR}}}
keep_epochs: true
optim: {{lr: 0.001, epochs: 2, lr_drop_epoch: 3, batch_size: 4, backbone_lr_scale: 1.0}}
""")
    result = train(load_train_config(str(cfg_path)))
    assert result["steps"] == 4 and all(np.isfinite(h["loss"]) for h in result["history"])
    with np.load(tmp_path / "run" / "pool.npz") as pool:
        assert pool["search"].shape[1:] == (48, 14, 14)
        assert pool["teacher_score"].shape[1:] == (14, 14)
        assert pool["teacher_probs"].shape[1:] == (4, 56)
        probs = pool["teacher_probs"].astype(np.float32)
        assert np.allclose(probs.sum(-1), 1.0, atol=0.01)
        # The score map is NanoTrack's sigmoid output, area-resampled: still probabilities, not constant.
        scores = pool["teacher_score"].astype(np.float32)
        assert scores.min() >= 0 and scores.max() <= 1 and scores.std() > 0
    from train.weights.checkpoint import load_model

    model, _ = load_model(result["checkpoint"], None)
    assert model.cfg.name == "nanostem224"
    # keep_epochs: each epoch's weights, to choose one on validation; the last one is the result.
    first, _ = load_model(str(tmp_path / "run" / "epoch1.pth.tar"), None)
    second, _ = load_model(str(tmp_path / "run" / "epoch2.pth.tar"), None)
    final = model.state_dict()
    assert all(torch.equal(v, final[k]) for k, v in second.state_dict().items())
    assert not all(torch.equal(v, final[k]) for k, v in first.state_dict().items())


def test_export_regrid_writes_the_tighter_window(tmp_path, capsys):
    from edge.cli.main import main
    from edge.engines.onnx import open_session, read_meta

    _, path = _saved_nanostem(tmp_path)
    out = str(tmp_path / "m224.onnx")
    assert main(["export", "--checkpoint", path, "--variant", "nanostem224", "--regrid", "--output", out]) == 0
    meta = read_meta(open_session(out), out)
    assert (meta.search_size, meta.search_factor, meta.bins) == (224, 3.5, 56)
    capsys.readouterr()
    assert main(["export", "--checkpoint", path, "--regrid", "--output", out]) == 2
    assert "--regrid needs" in capsys.readouterr().err
