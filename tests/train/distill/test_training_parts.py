"""Training building blocks: losses, teachers, and shrinking a model exactly."""

import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import NANOTRACK_DIR, shared_path  # noqa: E402
from train.distill.losses import ciou_loss, edge_kl_loss, feature_mimic_loss, giou_loss, score_loss  # noqa: E402
from train.distill.shrink import (  # noqa: E402
    apply_elimination,
    as_preset,
    elimination_factor,
    reduce_mlp,
    remove_layers,
    resize_inputs,
)
from train.distill.teachers import edges_to_distribution, marginalize_corners, resample_bins  # noqa: E402
from train.models.model import build_model  # noqa: E402
from train.models.presets import get_preset  # noqa: E402


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_iou_losses_on_hand_computed_boxes():
    a, b = t([0, 0, 2, 2]), t([1, 0, 3, 2])                       # IoU 2/6, enclosing 3x2
    loss, iou = giou_loss(a, b)
    assert iou.item() == pytest.approx(1 / 3)
    assert loss.item() == pytest.approx(1 - (1 / 3 - 0))          # union fills the enclosing box
    loss, iou = ciou_loss(a, b)
    # centre distance 1, enclosing diagonal^2 = 9 + 4, same aspect ratio (v = 0)
    assert loss.item() == pytest.approx(1 - (1 / 3 - 1 / 13))
    same, _ = ciou_loss(a, a)
    assert same.item() == pytest.approx(0, abs=1e-6)
    wide, _ = ciou_loss(t([0, 0, 4, 1]), t([0, 0, 2, 2]))         # aspect-ratio term appears
    iou_w = 2 / 6                                                  # overlap 2x1, union 4 + 4 - 2
    v = 4 / math.pi ** 2 * (math.atan(1) - math.atan(4)) ** 2
    alpha = v / (1 - iou_w + v)
    centre = ((2 - 1) ** 2 + (0.5 - 1) ** 2) / (16 + 4)
    assert wide.item() == pytest.approx(1 - (iou_w - centre - alpha * v), rel=1e-6)


def test_kl_is_zero_when_student_equals_teacher():
    logits = torch.randn(3, 4, 32)
    assert edge_kl_loss(logits, logits.softmax(-1)).item() == pytest.approx(0, abs=1e-6)
    assert edge_kl_loss(logits, torch.roll(logits, 3, -1).softmax(-1)).item() > 0.01


def test_feature_and_score_losses():
    feats = [torch.ones(2, 5, 8) * i for i in range(4)]
    assert feature_mimic_loss(feats, feats, [(0, 0), (3, 3)]).item() == 0
    assert feature_mimic_loss(feats, feats, [(0, 1)]).item() == pytest.approx(1.0)
    assert score_loss(torch.tensor([20.0, -20.0]), torch.tensor([1, 0])).item() < 1e-6


def test_marginalizing_a_known_corner_map():
    tl = torch.zeros(1, 8, 8)
    br = torch.zeros(1, 8, 8)
    tl[0, 1, 2], tl[0, 2, 2] = 0.75, 0.25                          # x = 2; y = 1 (3/4) or 2 (1/4)
    br[0, 4, 6] = 1.0
    left, right, top, bottom = marginalize_corners(tl, br)[0]
    assert left[2].item() == 1.0 and right[6].item() == 1.0
    assert top[1].item() == 0.75 and top[2].item() == 0.25 and bottom[4].item() == 1.0
    assert left.sum().item() == top.sum().item() == 1.0
    with pytest.raises(ValueError):
        marginalize_corners(torch.zeros(1, 6, 8), torch.zeros(1, 6, 8))


def test_resampling_bins_keeps_the_mass_and_the_expectation():
    probs = torch.softmax(torch.randn(2, 4, 72), -1)
    out = resample_bins(probs, 96)
    assert torch.allclose(out.sum(-1), torch.ones(2, 4), atol=1e-6)
    e_in = (probs * torch.arange(72) / 72).sum(-1)
    e_out = (out * torch.arange(96) / 96).sum(-1)
    assert torch.allclose(e_in, e_out, atol=1e-5)


def test_edges_to_distribution_peaks_at_the_edges():
    dist = edges_to_distribution(torch.tensor([[[0.25, 0.75, 0.5, 0.5]]]), torch.ones(1, 1), 32)
    assert dist.shape == (1, 4, 32) and torch.allclose(dist.sum(-1), torch.ones(1, 4))
    assert dist[0].argmax(-1).tolist() == [8, 24, 16, 16]


def test_nanotrack_teacher_finds_the_target_on_real_frames():
    if not os.path.isdir(NANOTRACK_DIR):
        pytest.skip("needs ../shared/models/opencv (NanoTrack)")
    from edge.camera.folder import read_rgb
    from edge.evaluation.datasets import find_sequences
    from edge.evaluation.metrics import iou
    from edge.trackers.crop import sample_target
    from train.distill.teachers import NanoTrackTeacher

    teacher = NanoTrackTeacher(NANOTRACK_DIR)
    (seq,) = find_sequences(shared_path("data", "sequences", "bag"))
    template, _ = sample_target(read_rgb(seq.frames[0]), seq.gt[0], 2.0, 127)
    overlaps = []
    for k in range(5, len(seq), 20):
        search, win = sample_target(read_rgb(seq.frames[k]), seq.gt[k - 1], 4.0, 255)
        score, boxes = teacher.dense(template, search)
        x1, y1, x2, y2 = boxes.reshape(-1, 4)[score.argmax()] / win.resize_factor
        overlaps.append(iou(np.array([[win.x1 + x1, win.y1 + y1, x2 - x1, y2 - y1]]), seq.gt[k:k + 1])[0])
        dist = teacher(template, search, 96)
        assert dist.shape == (4, 96) and torch.allclose(dist.sum(-1), torch.ones(4), atol=1e-5)
    assert np.mean(overlaps) > 0.6        # measured 0.85 on this sequence


def test_elimination_schedule_values():
    assert elimination_factor(1) == pytest.approx(0.9938, abs=1e-4)
    assert elimination_factor(20) == pytest.approx(0.5 * (1 + math.cos(math.pi * 21 / 40)))
    assert elimination_factor(38) > 0 and elimination_factor(39) == 0.0 and elimination_factor(45) == 0.0
    factors = [elimination_factor(e) for e in range(1, 41)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def inputs(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    T, S = cfg.template_size, cfg.search_size
    return (torch.randn(2, 3, T, T, generator=g), torch.randn(2, 3, T, T, generator=g),
            torch.randn(2, 3, S, S, generator=g))


def test_removed_layers_equal_the_fully_decayed_model():
    cfg = get_preset("tiny").__class__(**{**get_preset("tiny").__dict__, "depth": 4, "name": "tiny4"})
    model = build_model(cfg, seed=0)
    factor = apply_elimination(model, [0, 2], epoch=39)
    assert factor == 0.0 and not any(p.requires_grad for p in model.backbone.blocks[0].parameters())
    pruned = remove_layers(model, [0, 2])
    assert pruned.cfg.depth == 2
    x = inputs(cfg)
    with torch.no_grad():
        a, b = model(*x), pruned(*x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(pruned.backbone.blocks[1].attn.qkv.weight, model.backbone.blocks[3].attn.qkv.weight)
    apply_elimination(model, [0, 2], epoch=10)                     # not yet decayed: different
    with torch.no_grad():
        assert not torch.allclose(model(*x)[0], a[0])


def test_mlp_reduction_and_resizing_make_a_b_model_s_shaped():
    b = build_model(get_preset("B"), seed=0)
    shallow = remove_layers(b, [0, 2, 4, 6])                      # depth 8 -> 4
    narrow = reduce_mlp(shallow, 1.0)                               # MLP ratio 4 -> 1
    s_like = resize_inputs(narrow, 112, 224)                        # 128/288 -> 112/224
    s = as_preset(s_like, get_preset("S"))
    assert s.cfg.name == "S" and sum(p.numel() for p in s.state_dict().values()) == 16228897
    x = inputs(get_preset("S"))
    with torch.no_grad():
        boxes, scores = s(*x)
    assert boxes.shape == (2, 4) and torch.isfinite(boxes).all()


def test_mlp_reduction_keeps_the_important_units():
    model = build_model(get_preset("tiny"), seed=1)
    with torch.no_grad():                                          # make half of the hidden units dead
        for block in model.backbone.blocks:
            block.mlp.fc2.weight[:, 1::2] = 0
    narrower = reduce_mlp(model, 1.0)                              # 128 -> 64 hidden units: exactly the live ones
    x = inputs(model.cfg)
    with torch.no_grad():
        assert torch.allclose(model(*x)[0], narrower(*x)[0], atol=1e-6)
