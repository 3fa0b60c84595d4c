"""Per-layer probes of the INT8 model and the portable (reduce-range) quantisation.

x86 CPUs without VNNI multiply uint8 x int8 with an instruction that saturates 16-bit pair sums,
so onnxruntime's integer GEMMs there are not the exact integer product that aarch64 computes:
the same INT8 file tracks differently on a Pi. 7-bit weights cannot saturate.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("onnx")

from edge.sample import BUNDLED_MODEL, SAMPLE_DIR  # noqa: E402
from tools import layer_probe  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isfile(BUNDLED_MODEL), reason="no bundled model in this checkout")


def test_rel_diff_is_relative_and_zero_for_equal():
    a = np.array([3.0, 4.0])
    assert layer_probe.rel_diff(a, a) == 0.0
    assert layer_probe.rel_diff(a * 1.1, a) == pytest.approx(0.1)


@pytest.fixture(scope="module")
def fp32_twin(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("twin") / "twin.onnx")
    layer_probe.dequantize(BUNDLED_MODEL, out)
    return out


def test_dequantized_twin_has_no_integer_ops_and_tracks_like_the_int8_model(fp32_twin):
    import onnx

    from edge.engines.onnx import open_session, read_meta

    ops = {n.op_type for n in onnx.load(fp32_twin).graph.node}
    assert not ops & {"MatMulInteger", "DynamicQuantizeLinear"}
    assert read_meta(open_session(fp32_twin), fp32_twin).precision == "fp32"
    assert os.path.isfile(fp32_twin.replace(".onnx", ".step.onnx"))


def _integer_gemms(path):
    """(exact, total): MatMulInteger nodes whose onnxruntime result equals numpy's integer product,
    on real tracker inputs from the sample clip."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    proto = layer_probe._expose_all(onnx.load(path))
    del proto.metadata_props[:]
    feeds = layer_probe._tracker_inputs(path, os.path.dirname(SAMPLE_DIR), frames=(1,))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, {"template": feeds["template"], "online_template": feeds["online_template"],
                                   "search": feeds["search_0"]})))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    exact = total = 0
    for n in proto.graph.node:
        if n.op_type != "MatMulInteger":
            continue
        a = got[n.input[0]].astype(np.int64) - int(got[n.input[2]])
        w = inits[n.input[1]].astype(np.int64) - (inits[n.input[3]].astype(np.int64) if n.input[3] in inits else 0)
        total += 1
        exact += bool(np.array_equal(np.matmul(a, w), got[n.output[0]]))
    return exact, total


def test_reduce_range_weights_are_7_bit_and_every_integer_gemm_is_exact(fp32_twin, tmp_path):
    from train.export.quantize import quantize_model

    out = str(tmp_path / "portable.onnx")
    report = quantize_model(fp32_twin, out, reduce_range=True)
    assert report.mode == "dynamic-reduce-range"
    import onnx
    from onnx import numpy_helper

    weights = [numpy_helper.to_array(i) for i in onnx.load(out).graph.initializer
               if i.name.endswith("_quantized") and i.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w).max()) for w in weights) <= 64
    exact, total = _integer_gemms(out)
    assert total > 0 and exact == total
