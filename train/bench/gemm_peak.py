"""This machine's measured matrix-multiply peak through onnxruntime, fp32 and int8 (u8 x s8).

The FLOP ceiling of a model = its FLOPs per frame / this peak: no engine on this machine runs the
network faster. Method: ../shared/research/peers_and_limits.md section 4 (large square GEMMs,
best of several runs, same thread count as the engines).
"""

from __future__ import annotations

import time

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge.engines.onnx import session_options


def _session(int8: bool, n: int, threads: int):
    import onnxruntime as ort

    a_type, b_type, out_type = ((TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32) if int8
                                else (TensorProto.FLOAT,) * 3)
    node = helper.make_node("MatMulInteger" if int8 else "MatMul", ["A", "B"], ["Y"])
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", a_type, [n, n]),
                                               helper.make_tensor_value_info("B", b_type, [n, n])],
                              [helper.make_tensor_value_info("Y", out_type, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), sess_options=session_options(threads),
                                providers=["CPUExecutionProvider"])


def gemm_peak_gops(int8: bool, threads: int, n: int = 1024, repeats: int = 12) -> float:
    """Best achieved giga-operations per second (2 per multiply-accumulate)."""
    rng = np.random.default_rng(0)
    if int8:
        feeds = {"A": rng.integers(0, 255, (n, n), dtype=np.uint8), "B": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    else:
        feeds = {"A": rng.standard_normal((n, n), dtype=np.float32), "B": rng.standard_normal((n, n), dtype=np.float32)}
    session = _session(int8, n, threads)
    session.run(None, feeds)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9
