"""The NanoTrack stem in PyTorch, the nanostem preset, and the frozen-stem training pool."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import NANOTRACK_DIR, shared_path  # noqa: E402
from edge.errors import ModelError  # noqa: E402


def test_stem_equals_nanotrack_backbone_onnx():
    import onnxruntime as ort

    from train.models.stems import NanoTrackStem, load_nanotrack_stem

    path = shared_path("models", "opencv", "nanotrack_backbone_sim.onnx")
    stem = load_nanotrack_stem(NanoTrackStem().eval(), path)
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 255, 255)).astype(np.float32)
    reference = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        ours = stem(torch.from_numpy(x)).numpy()
    assert ours.shape == reference.shape == (1, 48, 16, 16)
    assert np.abs(ours - reference).max() < 1e-4 * np.abs(reference).max()
    with torch.no_grad():   # the nanostem input sizes give the 8 and 16 token grids
        assert stem(torch.zeros(1, 3, 128, 128)).shape == (1, 48, 8, 8)


def test_stem_loader_rejects_another_network(tiny_model_path):
    from train.models.stems import NanoTrackStem, load_nanotrack_stem

    with pytest.raises(ModelError, match="conv/gemm layers|not NanoTrack"):
        load_nanotrack_stem(NanoTrackStem(), tiny_model_path)


def test_nanostem_export_cached_and_pixels_in_metadata(tmp_path):
    from edge.engines import open_engine
    from edge.trackers.preprocess import Normalizer
    from train.export.onnx import export_onnx
    from train.models.model import build_model
    from train.models.presets import get_preset

    model = build_model(get_preset("nanostem"), seed=1)
    path = str(tmp_path / "n.onnx")
    export_onnx(model, path)       # checks full and cached graphs against PyTorch itself
    engine = open_engine(path)
    meta = engine.meta
    assert meta.graph == "cached" and meta.color_order == "BGR" and meta.extra["stem"] == "nanotrack"
    # The normaliser hands the stem raw BGR 0..255 from RGB frames.
    patch = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    x = Normalizer(meta, frame_color_order="RGB")(patch)
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), patch[..., ::-1].astype(np.float32), atol=1e-4)
    # Engine output on real-looking input equals PyTorch's full forward.
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 255, (1, 3, 128, 128)).astype(np.float32)
    s = rng.uniform(0, 255, (1, 3, 256, 256)).astype(np.float32)
    engine.set_templates(t, t)
    out = engine.run(s)
    with torch.no_grad():
        ref, _ = model(torch.from_numpy(t), torch.from_numpy(t), torch.from_numpy(s))
    assert np.abs(out.box_cxcywh - ref.numpy().reshape(-1)).max() < 1e-4
    engine.close()


def test_precomputed_features_equal_images():
    from train.models.model import build_model
    from train.models.presets import get_preset

    model = build_model(get_preset("nanostem"), seed=0)
    rng = torch.Generator().manual_seed(0)
    t = torch.rand(2, 3, 128, 128, generator=rng) * 255
    s = torch.rand(2, 3, 256, 256, generator=rng) * 255
    stem = model.backbone.patch_embed.stem
    with torch.no_grad():
        from_images = model(t, t, s)[0]
        from_features = model(stem(t), stem(t), stem(s))[0]
    assert torch.allclose(from_images, from_features, atol=1e-6)


def _scene(size=(320, 240), box=(100, 80, 60, 40), seed=0):
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 90, (size[1], size[0], 3), dtype=np.uint8), (5, 5), 0)
    x, y, w, h = box
    image[y:y + h, x:x + w] = 255
    return image


def test_pair_target_marks_the_object_in_the_search_crop():
    from train.data.feature_pool import PairMaker, PoolSpec

    spec = PoolSpec(128, 256, 2.0, 4.0, 64)
    box = np.array([100.0, 80.0, 60.0, 40.0])
    image = _scene()
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(20):
        pair = PairMaker(spec)(rng, image, box, image, box, image, box)
        if pair is None:
            continue
        (_, _, search), target = pair
        bright = search.mean(axis=2) > 170
        ys, xs = np.nonzero(bright)
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / 256.0
        assert np.abs(found - target).max() < 0.02        # same place, flips included
        checked += 1
    assert checked >= 10


def test_affine_copy_moves_the_box_with_the_object():
    from train.data.feature_pool import _affine_copy

    image = _scene()
    rng = np.random.default_rng(1)
    for _ in range(10):
        warped, moved = _affine_copy(rng, image, np.array([100.0, 80.0, 60.0, 40.0]))
        ys, xs = np.nonzero(warped.mean(axis=2) > 170)
        found = np.array([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()], float)
        cx, cy = moved[0] + moved[2] / 2, moved[1] + moved[3] / 2
        assert abs(cx - (found[0] + found[2] / 2)) < 4 and abs(cy - (found[1] + found[3] / 2)) < 4
        assert 0.8 < moved[2] / found[2] < 1.25


def _frozen_stem_sources(tmp_path):
    """A generated video (for NanoTrack pseudo-tracks) and three photos: (video path, photo folder)."""
    rng = np.random.default_rng(0)
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(40):
        frame = _scene(box=(40 + 3 * i, 60 + i, 60, 40), seed=0)
        frame[60 + i:100 + i, 40 + 3 * i:100 + 3 * i] = rng.integers(0, 255, 3)   # a coloured box that moves
        writer.write(frame)
    writer.release()
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        cv2.imwrite(str(photos / f"p{k}.png"),
                    cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (7, 7), 0))
    return video, photos


def _frozen_stem_recipe(tmp_path, pool: int, per_epoch: int, optim: str = "", extra: str = "") -> str:
    """A frozen_stem recipe on _frozen_stem_sources, two epochs of batches of 8; its path."""
    video, photos = _frozen_stem_sources(tmp_path)
    optim = ", " + optim if optim else ""
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(f"""
stage: frozen_stem
variant: nanostem
output: {tmp_path / 'run'}
data:
  sources:
    - {{path: {video}, kind: pseudo_video, weight: 1.0}}
    - {{path: {photos}, kind: images, weight: 1.0}}
  pool_samples: {pool}
  samples_per_epoch: {per_epoch}
teacher: {{kind: nanotrack, path: {NANOTRACK_DIR}}}
{extra}
optim: {{lr: 0.001, epochs: 2, lr_drop_epoch: 2, batch_size: 8{optim}}}
""")
    return str(cfg_path)


def test_frozen_stem_training_end_to_end(tmp_path):
    """Pool from a generated video (NanoTrack pseudo-tracks) and photos, a few steps, export."""
    shared_path("models", "opencv", "nanotrack_head_sim.onnx")
    from train.config import load_train_config
    from train.export.onnx import export_onnx
    from train.trainer import train

    cfg = load_train_config(_frozen_stem_recipe(tmp_path, pool=24, per_epoch=16, optim="backbone_lr_scale: 1.0"))
    stem_before = None
    result = train(cfg)
    assert result["steps"] == 4 and all(np.isfinite(h["loss"]) for h in result["history"])
    assert os.path.isfile(tmp_path / "run" / "pool.npz")
    from train.weights.checkpoint import load_model

    model, _ = load_model(result["checkpoint"], None)
    assert model.cfg.stem == "nanotrack"
    # The stem stayed frozen: still NanoTrack's weights.
    from train.models.stems import NanoTrackStem, load_nanotrack_stem

    stem_before = load_nanotrack_stem(NanoTrackStem(), os.path.join(NANOTRACK_DIR, "nanotrack_backbone_sim.onnx"))
    for a, b in zip(stem_before.state_dict().values(), model.backbone.patch_embed.stem.state_dict().values()):
        assert torch.equal(a, b)
    export_onnx(model, str(tmp_path / "trained.onnx"))
    # A second run with the same recipe reuses the cached pool instead of rebuilding it.
    mtime = os.path.getmtime(tmp_path / "run" / "pool.npz")
    train(cfg, max_steps=1)
    assert os.path.getmtime(tmp_path / "run" / "pool.npz") == mtime


def test_frozen_stem_training_can_remove_a_layer(tmp_path):
    """elimination.layers on the cached-stem stage: the layer fades out over the epochs and the
    saved model is one layer shallower, with the other layers' trained weights in order."""
    shared_path("models", "opencv", "nanotrack_head_sim.onnx")
    from train.config import load_train_config
    from train.trainer import train
    from train.weights.checkpoint import load_model

    result = train(load_train_config(_frozen_stem_recipe(tmp_path, pool=16, per_epoch=8,
                                                         extra="elimination: {layers: [1], decay_epochs: 2}")))
    model, _ = load_model(result["checkpoint"], None)
    assert model.cfg.depth == 2 and len(model.backbone.blocks) == 2
    last, _ = load_model(str(tmp_path / "run" / "checkpoint_last.pth.tar"), None)
    assert len(last.backbone.blocks) == 3                    # the training state keeps the faded layer
    assert torch.equal(model.backbone.blocks[1].attn.qkv.weight, last.backbone.blocks[2].attn.qkv.weight)


def test_frozen_stem_config_needs_the_nanotrack_teacher(tmp_path):
    from edge.errors import ConfigError
    from train.config import load_train_config

    path = tmp_path / "c.yaml"
    path.write_text("stage: frozen_stem\nvariant: nanostem\ndata: {sources: [{path: x, kind: images}]}\n")
    with pytest.raises(ConfigError, match="teacher.kind nanotrack"):
        load_train_config(str(path))


def test_pseudo_sequences_are_scoreable_otb_folders(tmp_path):
    """NanoTrack labels an unlabelled video; the result reads back as OTB sequences."""
    shared_path("models", "opencv", "nanotrack_head_sim.onnx")
    from edge.evaluation.datasets import find_sequences
    from train.data.pseudo_sequences import write_pseudo_sequences

    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (9, 9), 0)
    patch = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    for i in range(60):
        frame = background.copy()
        frame[80:120, 40 + 2 * i:80 + 2 * i] = patch
        writer.write(frame)
    writer.release()
    written = write_pseudo_sequences(video, str(tmp_path / "seqs"), NANOTRACK_DIR, min_frames=20)
    assert written
    seqs = find_sequences(str(tmp_path / "seqs"))
    assert len(seqs) == len(written)
    for s in seqs:
        assert len(s.frames) == len(s.gt) >= 20 and np.all(s.gt[:, 2:] > 0)


def test_stem_macs_match_a_count_of_the_layers_run():
    from train.models.stems import NanoTrackStem, SqueezeExcite, stem_macs

    stem = NanoTrackStem()
    counted = []

    def conv_hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        counted.append(output.numel() * k)

    def excite_hook(module, inputs, output):   # its two Linear weights run as 1x1 convs on one pixel
        counted.extend(fc.in_features * fc.out_features for fc in (module.fc1, module.fc2))

    for m in stem.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, SqueezeExcite):
            m.register_forward_hook(excite_hook)
    for size in (128, 256):
        counted.clear()
        with torch.no_grad():
            stem(torch.zeros(1, 3, size, size))
        assert stem_macs(size) == sum(counted)


def test_package_data_paths_resolve():
    from edge.errors import DatasetError
    from train.data.feature_pool import resolve_path

    assert (resolve_path("pkg:edge/data/sample")
            == os.path.join(os.path.dirname(__import__("edge").__file__), "data", "sample"))
    assert resolve_path("/some/folder") == "/some/folder"
    with pytest.raises(DatasetError, match="not installed"):
        resolve_path("pkg:no_such_package_xyz/data")
