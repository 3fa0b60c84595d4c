"""The bench's per-operator profile: events grouped into GEMM / Q-DQ / transpose / ... per run."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edge.bench.op_profile import aggregate, category, profile_engine_graph
from edge.sample import BUNDLED_MODEL


def _node(op, dur_us, ts=0):
    return {"cat": "Node", "name": f"{op}_node_kernel_time", "dur": dur_us, "ts": ts, "args": {"op_name": op}}


def test_aggregate_groups_ops_per_run_and_leaves_the_rest_as_overhead():
    events = [
        {"cat": "Session", "name": "model_run", "dur": 10_000, "ts": 0},
        {"cat": "Session", "name": "model_run", "dur": 12_000, "ts": 20_000},
        _node("DynamicQuantizeMatMul", 6_000), _node("MatMulInteger", 2_000),
        _node("DynamicQuantizeLinear", 1_000), _node("Transpose", 3_000),
        _node("Softmax", 1_000), _node("LayerNormalization", 2_000), _node("Conv", 4_000),
        _node("Erf", 1_000),
        # Not kernel time: the fence events onnxruntime writes beside each kernel.
        {"cat": "Node", "name": "x_fence_before", "dur": 999, "ts": 0, "args": {"op_name": "MatMul"}},
    ]
    agg = aggregate(events)
    assert agg["runs"] == 2
    assert agg["total_ms"] == pytest.approx(11.0)
    assert agg["by_category_ms"] == pytest.approx({"gemm": 4.0, "conv": 2.0, "transpose": 1.5, "layernorm": 1.0,
                                                   "quantize": 0.5, "softmax": 0.5, "other": 0.5})
    assert agg["kernels_ms"] == pytest.approx(10.0)
    assert agg["overhead_ms"] == pytest.approx(1.0)
    assert list(agg["by_category_ms"])[0] == "gemm"


def test_unknown_ops_are_other():
    assert category("QLinearMatMul") == "gemm" and category("DequantizeLinear") == "quantize"
    assert category("SomethingNew") == "other"


@pytest.mark.skipif(not os.path.isfile(BUNDLED_MODEL), reason="no bundled model in this checkout")
def test_real_profile_of_the_bundled_model_accounts_for_its_run_time():
    from edge.engines import open_engine

    meta = open_engine(BUNDLED_MODEL, threads=1).meta
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 255, (1, 3, meta.template_size, meta.template_size)).astype(np.float32)
    searches = [rng.uniform(0, 255, (1, 3, meta.search_size, meta.search_size)).astype(np.float32)
                for _ in range(4)]
    prof = profile_engine_graph(BUNDLED_MODEL, t, t, searches, threads=1)
    assert prof["graph"] == "step" and prof["runs"] == 4
    # The bundled INT8 model: dynamic-quantised GEMMs and an fp32 CNN stem.
    assert prof["by_category_ms"]["gemm"] > 0 and prof["by_category_ms"]["conv"] > 0
    assert 0 < prof["kernels_ms"] <= prof["total_ms"]
    assert sum(prof["by_category_ms"].values()) == pytest.approx(prof["kernels_ms"])
