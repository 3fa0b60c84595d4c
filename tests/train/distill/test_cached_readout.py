"""The readout probe learns where a box is when the features say it (and cannot when they don't)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from conftest import shared_path  # noqa: E402
from train.distill.cached_readout import ProbeHead, expected_edges, fit, graft  # noqa: E402

GRID, BINS = 8, 32


def _pairs(n, seed, informative=True):
    """Features over an 8x8 grid with a marker channel on the target's cells (or nowhere)."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, GRID * GRID, 16, generator=g) * 0.1
    truth = torch.zeros(n, 4)
    for i in range(n):
        x, y = torch.randint(0, GRID - 2, (2,), generator=g).tolist()
        if informative:
            for cy in (y, y + 1):
                feats[i, cy * GRID + x: cy * GRID + x + 2, 0] += 3.0
        truth[i] = torch.tensor([x / GRID, y / GRID, (x + 2) / GRID, (y + 2) / GRID])
    edges = truth[:, [0, 2, 1, 3]]
    centres = torch.arange(BINS) / BINS                    # bin i at i / bins, as the box head
    probs = torch.softmax(-((centres[None, None] - edges[..., None]) ** 2) / 2e-3, dim=-1)
    return {"final": feats, "previous": feats, "probs": probs, "truth": truth}


def test_expected_edges_of_a_sharp_distribution_is_its_bin():
    probs = torch.zeros(1, 4, BINS)
    probs[0, :, 8] = 1.0
    assert torch.allclose(expected_edges(probs), torch.full((1, 4), 8 / BINS))


def test_the_readout_finds_a_target_the_features_mark():
    result = fit(_pairs(512, 0), _pairs(128, 1), "last", heads=4, steps=400, batch=32, lr=1e-2, log=None)
    assert result["teacher_iou"] > 0.8                      # the synthetic "teacher" is near the truth
    assert result["held_iou"] > 0.3                         # 0.45 here; chance is under 0.1


def test_a_two_layer_readout_with_mlps_finds_it_too_and_grafts_only_into_its_preset(tmp_path):
    from edge.errors import ModelError

    result = fit(_pairs(512, 0), _pairs(128, 1), "last", heads=4, steps=400, batch=32, lr=1e-2, log=None,
                 layers=2, mlp_ratio=4.0)
    assert result["held_iou"] > 0.3
    saved = {**result["head"].shape(), "state": result["head"].state_dict()}
    again = ProbeHead.from_saved(saved)
    feats = _pairs(4, 2)["final"]
    assert torch.equal(again(feats)[0], result["head"](feats)[0])
    teacher = shared_path("models", "vittrack", "vitTracker.onnx")
    with pytest.raises(ModelError, match="layers 2"):
        graft(teacher, ProbeHead(48, 4, 64, 256, layers=2, mlp_ratio=4.0), "vitstem-readout")
    student = graft(teacher, ProbeHead(48, 4, 64, 256, layers=2, mlp_ratio=4.0), "vitstem-decoder")
    assert len(student.readout) == 2 and student.readout[1].mlp is not None


def test_the_readout_cannot_find_a_target_the_features_do_not_mark():
    result = fit(_pairs(512, 0, informative=False), _pairs(128, 1, informative=False), "last", heads=4,
                 steps=400, batch=32, lr=1e-2, log=None)
    assert result["held_iou"] < 0.2


def test_a_grafted_head_is_the_students_head():
    """graft: the student's edge distributions are the fitted head's on the student's own normed
    search tokens (its boxes then read them near their mode, as its preset says)."""
    head = ProbeHead(48, 4, 64, 256)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    student = graft(shared_path("models", "vittrack", "vitTracker.onnx"), head)
    g = torch.Generator().manual_seed(0)
    z, oz, x = torch.randn(2, 3, 128, 128, generator=g), torch.randn(2, 3, 128, 128, generator=g), \
        torch.randn(2, 3, 256, 256, generator=g)
    with torch.no_grad():
        tokens = student.backbone(z, oz, x)
        logits = student.forward_heads(student.pred_tokens(tokens))["edge_logits"]
        _, expected = head(student.norm(tokens[:, -256:]))
    assert torch.allclose(logits, expected, atol=1e-6)


def test_graft_refuses_a_readout_fitted_with_another_head_count():
    """The readout's weights fit any head count: a 1-head fit must not load into the 4-head student."""
    from edge.errors import ModelError

    with pytest.raises(ModelError, match="fitted with heads 1"):
        graft(shared_path("models", "vittrack", "vitTracker.onnx"), ProbeHead(48, 1, 64, 256))
