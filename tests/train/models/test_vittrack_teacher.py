"""VitTrack in PyTorch (train/models/vittrack.py), its weights read from the ONNX file, against
onnxruntime on the crops the runtime's own loop makes on real validation frames."""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import REPO, shared_path

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edge.camera.folder import read_rgb  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from edge.evaluation.datasets import find_sequences  # noqa: E402
from edge.trackers.vittrack import VitTracker, VitTrackModel  # noqa: E402
from train.models.vittrack import BLOCKS, load_vittrack  # noqa: E402


class Recording(VitTrackModel):
    """The onnxruntime model, keeping every (template, search) pair it was given."""

    def __init__(self, path: str) -> None:
        super().__init__(path, threads=1)
        self.pairs = []

    def run(self, template, search):
        self.pairs.append((template, search))
        return super().run(template, search)


def real_pairs(path: str, per_sequence: int = 3, sequences: int = 4):
    model = Recording(path)
    for seq in find_sequences(shared_path("data", "validation"))[:sequences]:
        tracker = VitTracker(model)
        tracker.init(read_rgb(seq.frames[0]), seq.gt[0])
        for i in range(1, per_sequence + 1):
            tracker.update(read_rgb(seq.frames[i * (len(seq) - 1) // per_sequence]))
    return model


def test_outputs_match_onnxruntime_on_real_crops():
    path = shared_path("models", "vittrack", "vitTracker.onnx")
    onnx_model = real_pairs(path)
    teacher = load_vittrack(path)
    template = torch.from_numpy(np.concatenate([t for t, _ in onnx_model.pairs]))
    search = torch.from_numpy(np.concatenate([s for _, s in onnx_model.pairs]))
    with torch.no_grad():
        out = teacher(template, search)
    expected = [np.concatenate(maps) for maps in zip(*(VitTrackModel.run(onnx_model, t, s)
                                                         for t, s in onnx_model.pairs))]
    for name, got, want in zip(("score", "size", "offset"), (out.score, out.size, out.offset), expected):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4, err_msg=name)
    assert out.score.max() > 0.5          # real targets, not blank crops: the maps have peaks
    assert len(out.features) == BLOCKS and all(f.shape == (len(template), 320, 48) for f in out.features)
    # Deep-to-shallow mimics these: each block really changes the tokens.
    assert all(not torch.allclose(a, b) for a, b in zip(out.features, out.features[1:]))


def test_a_file_that_is_not_vittrack_is_refused(tmp_path):
    nano = shared_path("models", "opencv", "nanotrack_backbone_sim.onnx")
    with pytest.raises(ModelError, match="not VitTrack"):
        load_vittrack(nano)
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelError, match="not a readable ONNX file"):
        load_vittrack(str(bad))


# -- the student (issue 29): MixFormerV2 started as VitTrack ---------------------------------

def test_student_starts_with_the_teachers_stems_positions_and_blocks():
    from train.distill.vittrack_teacher import student_from_teacher
    from train.models.model import NUM_PRED_TOKENS
    from train.models.presets import get_preset

    teacher = load_vittrack(shared_path("models", "vittrack", "vitTracker.onnx"))
    student = student_from_teacher(teacher, get_preset("vitstem"))
    gen = torch.Generator().manual_seed(0)
    z, x = torch.randn(2, 3, 128, 128, generator=gen), torch.randn(2, 3, 256, 256, generator=gen)
    with torch.no_grad():
        tokens = teacher.tokens(z, x)
        bb = student.backbone
        torch.testing.assert_close(bb.embed_template(z), tokens[:, :64], rtol=0, atol=1e-6)
        torch.testing.assert_close(bb.patch_embed(x) + bb.pos_embed_s, tokens[:, 64:], rtol=0, atol=1e-6)
        for mine, theirs in zip(bb.blocks, teacher.blocks):
            assert torch.equal(mine.attn.qkv.weight, theirs.qkv.weight)
            assert torch.equal(mine.mlp.fc2.bias, theirs.fc2.bias)
        out = student(z, z, x, train_outputs=True)
    assert out["edge_logits"].shape == (2, NUM_PRED_TOKENS, 64)
    assert [f.shape for f in out["features"]] == [(2, 2 * 64 + 256 + NUM_PRED_TOKENS, 48)] * 3


def test_a_preset_of_another_shape_cannot_start_from_vittrack():
    from train.distill.vittrack_teacher import student_from_teacher
    from train.models.presets import get_preset
    from train.models.vittrack import VitTrack

    with pytest.raises(ModelError, match="cannot start from VitTrack"):
        student_from_teacher(VitTrack(), get_preset("T192"))


def test_edge_distributions_follow_the_box_of_the_best_cell():
    from train.distill.vittrack_teacher import map_edge_probs

    score = torch.full((1, 1, 16, 16), 0.01)
    score[0, 0, 5, 9] = 0.9
    size = torch.zeros(1, 2, 16, 16)
    size[0, 0], size[0, 1] = 0.25, 0.125
    offset = torch.full((1, 2, 16, 16), 0.5)
    probs = map_edge_probs(score, size, offset, bins=64)
    assert probs.shape == (1, 4, 64)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 4))
    cx, cy = 9.5 / 16, 5.5 / 16
    expected = torch.tensor([cx - 0.125, cx + 0.125, cy - 0.0625, cy + 0.0625])
    mean = (probs[0] * torch.arange(64) / 64).sum(-1)
    torch.testing.assert_close(mean, expected, rtol=0, atol=1.5 / 64)   # within the Gaussian's bin rounding


def test_dense_to_sparse_trains_resumes_and_exports(tmp_path):
    """Two steps of the stage-1 config on the training corpus, a resumed third, and the result
    exported with its cached template graph; the metadata says RGB with ImageNet's mean/std."""
    from train.config import load_train_config
    from train.export.onnx import export_onnx
    from train.trainer import train
    from train.weights.checkpoint import load_model

    shared_path("data", "train")
    repo = REPO
    cfg = load_train_config(os.path.join(repo, "train", "configs", "vitstem_dense_to_sparse.yaml"))
    for source in cfg.data.sources:
        source.path = os.path.join(repo, source.path) if not os.path.isabs(source.path) else source.path
    cfg.teacher.path = shared_path("models", "vittrack", "vitTracker.onnx")
    cfg.output, cfg.data.samples_per_epoch, cfg.data.workers = str(tmp_path / "run"), 4, 0
    cfg.optim.batch_size, cfg.optim.epochs, cfg.keep_epochs = 2, 2, False
    first = train(cfg)
    assert first["steps"] == 4 and all(np.isfinite(h["loss"]) and h["kl"] > 0 for h in first["history"])
    cfg.optim.epochs = 3
    resumed = train(cfg, resume=True)
    assert resumed["epochs_run"] == 1 and resumed["steps"] == 2
    model, _ = load_model(resumed["checkpoint"], None)
    assert model.cfg.name == "vitstem"
    path = export_onnx(model, str(tmp_path / "m.onnx")).path
    from edge.engines.onnx import open_session, read_meta

    meta = read_meta(open_session(path), path)
    assert meta.color_order == "RGB" and meta.mean == pytest.approx((0.485, 0.456, 0.406))
    assert meta.preset == "vitstem" and meta.search_size == 256 and meta.template_size == 128


def test_prediction_tokens_can_train_at_their_own_rate():
    from train.config import TrainConfig
    from train.models.model import build_model
    from train.models.presets import get_preset
    from train.trainer import _optimizer

    model = build_model(get_preset("tiny"), seed=0)
    cfg = TrainConfig()
    cfg.optim.lr, cfg.optim.backbone_lr_scale = 1e-3, 0.5

    def rate_of(optimizer, param):
        return next(g["lr"] for g in optimizer.param_groups if any(p is param for p in g["params"]))

    optimizer, _ = _optimizer(cfg, model, None)
    assert rate_of(optimizer, model.backbone.reg_tokens) == pytest.approx(5e-4)     # the backbone's, by default
    cfg.optim.token_lr_scale = 3.0
    optimizer, trained = _optimizer(cfg, model, None)
    assert rate_of(optimizer, model.backbone.reg_tokens) == pytest.approx(3e-3)
    assert rate_of(optimizer, model.backbone.pos_embed_reg) == pytest.approx(3e-3)
    assert rate_of(optimizer, model.backbone.blocks[0].attn.qkv.weight) == pytest.approx(5e-4)
    assert rate_of(optimizer, model.box_head.layers[0][0].weight) == pytest.approx(1e-3)
    assert len(trained) == len([p for p in model.parameters() if p.requires_grad])


def test_prediction_tokens_start_as_the_targets_edges_and_look_at_the_crops():
    from train.distill.vittrack_teacher import init_tokens_from_templates, student_from_teacher
    from train.models.presets import get_preset

    path = shared_path("models", "vittrack", "vitTracker.onnx")
    pairs = real_pairs(path).pairs
    template = torch.from_numpy(np.concatenate([t for t, _ in pairs]))
    search = torch.from_numpy(np.concatenate([s for _, s in pairs]))
    student = student_from_teacher(load_vittrack(path), get_preset("vitstem"))
    init_tokens_from_templates(student, template)
    bb = student.backbone
    with torch.no_grad():
        start = (bb.reg_tokens + bb.pos_embed_reg)[0]                                   # (4, D)
        tokens = bb.embed_template(template).mean(0).reshape(8, 8, -1)                  # target: cells 2..5
        torch.testing.assert_close(start[0], tokens[2:6, 2].mean(0))                    # left edge
        torch.testing.assert_close(start[3], tokens[5, 2:6].mean(0))                    # bottom edge
        assert torch.cdist(start, start).triu(1)[torch.triu_indices(4, 4, 1).unbind()].min() > 0.1
        x_t, x_s = bb.embed(template, template, search)
        block = bb.blocks[0]
        q, k, _ = block.attn._split(block.norm1(torch.cat([x_t, x_s], dim=1)))
        attention = (q[:, :, -4:] @ k.transpose(-2, -1) * block.attn.scale).softmax(-1)
    assert attention[..., :-4].sum(-1).mean() > 0.5                                      # on the crops, not each other


def test_frame_flops_count_the_vittrack_stems():
    from train.bench.flops import frame_macs
    from train.models.presets import get_preset
    from train.models.vittrack import conv_stem

    def conv_macs(size):
        macs, x = 0, torch.zeros(1, 3, size, size)
        for layer in conv_stem():
            y = layer(x)
            if isinstance(layer, torch.nn.Conv2d):
                macs += y[0].numel() * layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
            x = y
        return macs

    cfg = get_preset("vitstem")
    assert frame_macs(cfg, cached=True).patch_embed == conv_macs(256)
    assert frame_macs(cfg, cached=False).patch_embed == conv_macs(256) + 2 * conv_macs(128)
