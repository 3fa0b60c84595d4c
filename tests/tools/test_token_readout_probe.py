"""The readout probe learns where a box is when the features say it (and cannot when they don't)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tools.token_readout_probe import expected_edges, fit  # noqa: E402

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
    centres = (torch.arange(BINS) + 0.5) / BINS
    probs = torch.softmax(-((centres[None, None] - edges[..., None]) ** 2) / 2e-3, dim=-1)
    return {"final": feats, "previous": feats, "probs": probs, "truth": truth}


def test_expected_edges_of_a_sharp_distribution_is_its_bin_centre():
    probs = torch.zeros(1, 4, BINS)
    probs[0, :, 8] = 1.0
    assert torch.allclose(expected_edges(probs), torch.full((1, 4), 8.5 / BINS))


def test_the_readout_finds_a_target_the_features_mark():
    result = fit(_pairs(512, 0), _pairs(128, 1), "last", heads=4, steps=300, batch=32, lr=1e-2, log=None)
    assert result["teacher_iou"] > 0.8                      # the synthetic "teacher" is near the truth
    assert result["held_iou"] > 0.3                         # 0.45 here; chance is under 0.1


def test_the_readout_cannot_find_a_target_the_features_do_not_mark():
    result = fit(_pairs(512, 0, informative=False), _pairs(128, 1, informative=False), "last", heads=4,
                 steps=300, batch=32, lr=1e-2, log=None)
    assert result["held_iou"] < 0.2
