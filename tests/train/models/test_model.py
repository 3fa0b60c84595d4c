"""The network: attention semantics, the exact template cache, position tables, heads."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from train.models.model import MixedAttention, build_model, sincos_pos_embed_2d  # noqa: E402
from train.models.presets import get_preset  # noqa: E402


def reference_masked_attention(attn: MixedAttention, x, m, heads=None):
    """Full attention with an explicit mask: template queries may not see search/token keys."""
    B, N, C = x.shape
    h = heads or attn.num_heads
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv.split(C, dim=-1)
    q, k, v = (t.reshape(B, N, h, C // h).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(C // h)
    mask = torch.zeros(N, N, dtype=torch.bool)
    mask[:m, m:] = True
    scores = scores.masked_fill(mask, float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
    return out @ attn.proj.weight.T + attn.proj.bias


def test_mixed_attention_equals_masked_reference():
    torch.manual_seed(0)
    attn = MixedAttention(64, 4)
    x = torch.randn(2, 30, 64)
    assert torch.allclose(attn(x, 12), reference_masked_attention(attn, x, 12), atol=1e-6)


def test_prediction_tokens_may_have_their_own_heads():
    """token_heads: the image tokens attend as the block's heads do, the four prediction tokens
    (last) as that many heads over the same projections; the template cache stays exact."""
    torch.manual_seed(2)
    attn = MixedAttention(48, 1, token_heads=4)
    x = torch.randn(2, 30, 48)
    out = attn(x, 12)
    assert torch.allclose(out[:, :-4], reference_masked_attention(attn, x, 12)[:, :-4], atol=1e-6)
    assert torch.allclose(out[:, -4:], reference_masked_attention(attn, x, 12, heads=4)[:, -4:], atol=1e-6)
    assert not torch.allclose(out[:, -4:], reference_masked_attention(attn, x, 12)[:, -4:], atol=1e-3)


def test_templates_do_not_see_the_search_image():
    torch.manual_seed(1)
    attn = MixedAttention(64, 4)
    x = torch.randn(1, 30, 64)
    y = x.clone()
    y[:, 12:] = torch.randn(1, 18, 64)
    assert torch.equal(attn(x, 12)[:, :12], attn(y, 12)[:, :12])


@pytest.mark.parametrize("preset", ["tiny", "S", "B", "vitstem4", "vitstem-readout", "vitstem-decoder"])
def test_cached_template_path_equals_full_forward(preset):
    model = build_model(get_preset(preset), seed=0)
    t, s = model.cfg.template_size, model.cfg.search_size
    g = torch.Generator().manual_seed(0)
    z, oz, x = (torch.randn(2, 3, t, t, generator=g), torch.randn(2, 3, t, t, generator=g),
                torch.randn(2, 3, s, s, generator=g))
    with torch.no_grad():
        boxes, scores = model(z, oz, x)
        cached_boxes, cached_scores = model.forward_search(x, model.forward_templates(z, oz))
    assert (boxes - cached_boxes).abs().max() <= 1e-5
    assert (scores - cached_scores).abs().max() <= 1e-4


def test_patch_embedding_gemm_equals_the_strided_conv():
    torch.manual_seed(3)
    embed = build_model(get_preset("S"), seed=0).backbone.patch_embed
    x = torch.randn(2, 3, 112, 112)
    conv = torch.nn.functional.conv2d(x, embed.proj.weight, embed.proj.bias, stride=16).flatten(2).transpose(1, 2)
    assert torch.allclose(embed(x), conv, atol=1e-4)


def test_sincos_table_formula():
    D, G = 32, 3
    table = sincos_pos_embed_2d(D, G).numpy()
    for r in range(G):
        for c in range(G):
            for k in range(D // 4):
                w = 10000 ** (-k / (D // 4))
                row = table[r * G + c]
                assert row[k] == pytest.approx(math.sin(c * w), abs=1e-6)
                assert row[D // 4 + k] == pytest.approx(math.cos(c * w), abs=1e-6)
                assert row[D // 2 + k] == pytest.approx(math.sin(r * w), abs=1e-6)
                assert row[3 * D // 4 + k] == pytest.approx(math.cos(r * w), abs=1e-6)


def test_box_head_expectation_and_edge_order():
    model = build_model(get_preset("tiny"), seed=0)
    head = model.box_head
    F, S = head.bins, head.search_size
    # Replace the MLP by one that emits a sharp peak at chosen bins per token (l, r, t, b).
    peaks = [4, 20, 8, 28]
    logits = torch.full((1, 4, F), -1e4)
    for i, p in enumerate(peaks):
        logits[0, i, p] = 0.0
    head.layers = torch.nn.Identity()
    boxes, _ = head(logits)
    left, right, top, bottom = (p * S / F / S for p in peaks)
    expected = torch.tensor([[(left + right) / 2, (top + bottom) / 2, right - left, bottom - top]])
    assert torch.allclose(boxes, expected, atol=1e-6)


def test_score_is_mean_of_token_logits():
    model = build_model(get_preset("tiny"), seed=0)
    tokens = torch.randn(2, 4, model.cfg.embed_dim)
    per_token = model.score_head.layers(tokens).squeeze(-1)
    assert torch.allclose(model.score_head(tokens), per_token.mean(-1))


def test_tiny_forward_backward_runs():
    model = build_model(get_preset("tiny"), seed=0).train()
    t, s = model.cfg.template_size, model.cfg.search_size
    boxes, scores = model(torch.randn(2, 3, t, t), torch.randn(2, 3, t, t), torch.randn(2, 3, s, s))
    (boxes.sum() + scores.sum()).backward()
    assert model.backbone.reg_tokens.grad is not None
    assert model.backbone.pos_embed_s.grad is None  # frozen, as upstream
    assert boxes.shape == (2, 4) and scores.shape == (2,)
    assert np.isfinite(boxes.detach().numpy()).all()


@pytest.mark.parametrize("preset", ["vitstem4", "vitstem-readout", "vitstem-decoder"])
def test_a_student_with_token_heads_or_a_readout_exports_and_agrees(tmp_path, preset):
    """The export folds the attention scale into q, the prediction tokens keep their own scale on top
    (export_onnx checks the ONNX graphs against PyTorch and raises when they disagree)."""
    pytest.importorskip("onnxruntime")
    from train.export.onnx import export_onnx

    report = export_onnx(build_model(get_preset(preset), seed=0), str(tmp_path / "s.onnx"))
    assert report.box_max_abs_diff <= 1e-4


def test_edges_read_near_their_mode_stay_on_the_stronger_of_two_targets():
    """A distribution with mass on the target and on a look-alike: the full expectation puts the
    edge between them, the mode window keeps it on the stronger; training keeps the expectation."""
    from train.models.model import DistributionBoxHead

    head = DistributionBoxHead(8, bins=64, search_size=256, mode_window=4).eval()
    probs = torch.full((1, 4, 64), 1e-6)
    probs[..., 10] = 0.6                                   # the target at bin 10 (40 px)
    probs[..., 50] = 0.4                                   # a look-alike at bin 50 (200 px)
    probs = probs / probs.sum(-1, keepdim=True)
    local = (head._near_mode(probs) * head.bin_pos).sum(-1)
    full = (probs * head.bin_pos).sum(-1)
    assert torch.allclose(local, torch.full_like(local, 40.0), atol=0.1)
    assert float(full[0, 0]) > 100                         # between the two
    tokens = torch.randn(2, 4, 8)
    plain = DistributionBoxHead(8, bins=64, search_size=256)
    plain.load_state_dict(head.state_dict())
    assert torch.allclose(head.train()(tokens)[0], plain.eval()(tokens)[0])
