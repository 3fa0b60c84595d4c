"""A shipped model's training checkpoint can be recovered from its exported file (for finetuning)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from train.export.onnx import export_onnx  # noqa: E402
from train.export.quantize import quantize_model  # noqa: E402
from train.models.model import build_model  # noqa: E402
from train.models.presets import get_preset  # noqa: E402
from train.weights.recover_onnx import recover  # noqa: E402


def _trained_like(seed):
    """A seeded model with every parameter distinct, as after training (fresh LayerNorm ones and
    zero biases are shared by the exporter as one initialiser, which no trained model has)."""
    model = build_model(get_preset("nanostem"), seed=seed).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return model


def _initialisers(path):
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


def test_fp32_export_recovers_every_parameter_exactly(tmp_path):
    model = _trained_like(7)
    export_onnx(model, str(tmp_path / "m.onnx"), check=False)
    back = recover(str(tmp_path / "m.onnx"))
    want, got = model.state_dict(), back.state_dict()
    tokens = want["backbone.reg_tokens"] + want["backbone.pos_embed_reg"]
    for key, value in want.items():
        if key in ("backbone.reg_tokens", "backbone.pos_embed_reg"):
            continue
        assert torch.allclose(got[key], value, atol=1e-6), key
    assert torch.allclose(got["backbone.reg_tokens"] + got["backbone.pos_embed_reg"], tokens, atol=1e-6)


def test_dynamic_int8_model_requantises_to_the_same_weights(tmp_path):
    model = _trained_like(3)
    export_onnx(model, str(tmp_path / "m.onnx"), check=False)
    quantize_model(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"))
    back = recover(str(tmp_path / "q.onnx"))
    export_onnx(back, str(tmp_path / "r.onnx"), check=False)
    quantize_model(str(tmp_path / "r.onnx"), str(tmp_path / "rq.onnx"))
    first, again = _initialisers(tmp_path / "q.onnx"), _initialisers(tmp_path / "rq.onnx")
    quantised = [n for n in first if n.endswith("_quantized")]
    assert len(quantised) > 10
    for name in quantised:       # int8 codes: equal up to a rounding tie
        assert np.abs(first[name].astype(int) - again[name].astype(int)).max() <= 1, name


def test_an_int8_file_from_before_the_graph_changes_recovers(tmp_path):
    """The recipe starts from a file exported before 2026-11-30 (squeeze-excite as two MatMuls, box
    built with unbind/stack): its anonymous weights are numbered differently from what the current
    export makes, and they still come back, each to its own parameter."""
    from train.models.model import DistributionBoxHead
    from train.models.stems import SqueezeExcite

    model = _trained_like(5)
    SqueezeExcite.linear_form = DistributionBoxHead.stack_form = True
    try:
        export_onnx(model, str(tmp_path / "old.onnx"), check=False)
    finally:
        SqueezeExcite.linear_form = DistributionBoxHead.stack_form = False
    quantize_model(str(tmp_path / "old.onnx"), str(tmp_path / "old-q.onnx"))
    nodes = onnx.load(str(tmp_path / "old-q.onnx")).graph.node
    assert any(n.op_type == "ReduceMean" and "/se/" in n.name for n in nodes)
    assert any(n.op_type == "Concat" and "pred_boxes" in n.output for n in nodes)
    back = recover(str(tmp_path / "old-q.onnx")).state_dict()
    want = model.state_dict()
    for key, value in want.items():
        if key in ("backbone.reg_tokens", "backbone.pos_embed_reg"):
            continue
        if value.ndim == 2 and key.endswith(".weight"):
            # dequantised int8 MatMul weights: within half a step of each output channel's scale
            half_step = 0.5 * value.abs().amax(dim=1, keepdim=True) / 127
            assert torch.all((back[key] - value).abs() <= half_step * 1.01 + 1e-7), key
        else:
            assert torch.allclose(back[key], value, atol=1e-6), key


def test_a_file_without_edge_track_metadata_is_refused(tmp_path):
    from edge.errors import ModelError

    model = build_model(get_preset("nanostem"), seed=1).eval()
    export_onnx(model, str(tmp_path / "m.onnx"), check=False)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match="no edge-track metadata"):
        recover(str(tmp_path / "bare.onnx"))
