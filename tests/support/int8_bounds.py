"""Bounds for INT8 results that hold on any CPU, derived from the quantisation grid itself.

An INT8 QDQ graph (post-training or QAT) fixes every activation's scale and zero point. What a CPU
may still change is how each integer result is rounded back onto that grid: VNNI and ARM
dot-product kernels accumulate exactly, AVX2 without VNNI adds u8 x s8 pairs in int16 with
saturation, requantisation rounds in float with one multiplier or another. So INT8 outputs are
compared with the graph's own float simulation (onnxruntime with graph optimisation off runs
QuantizeLinear/DequantizeLinear as float ops and every MatMul in fp32: no integer kernel, the
same on every machine), within a multiple of what one quantisation step at every quantiser does
to the output: the spread of "dithered" simulations, in which noise of up to one step is added
before each activation quantiser, so each rounding may land one grid point away. The scales come
from the graph, so the bound follows the model: a wider grid gives a wider bound, and an error
larger than a few steps anywhere (a wrong scale, a broken kernel) exceeds it.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from edge.engines.model_meta import KV_NAME, OUTPUT_NAMES, step_path_for

# How many one-step dithers the INT8 kernels may be worth. Measured on a 2-core AMD EPYC (AVX2, no
# VNNI: u8 x s8 pairs summed in int16 with saturation), eight seeded tiny QAT models: the kernels
# sat at 0.9-2.8 times the one-step spread; kernels that accumulate exactly (VNNI, ARM dot
# product) stay below 1.
STEPS_ALLOWED = 4.0
DITHER_SEEDS = (1, 2)


def _is_constant(graph: onnx.GraphProto, name: str) -> bool:
    """Weights (an initializer or a Constant): their quantisation is fixed, not a kernel's rounding."""
    return name in {i.name for i in graph.initializer} or any(
        n.op_type == "Constant" and name in n.output for n in graph.node)


def dithered(model: onnx.ModelProto, seed: int, amplitude: float = 1.0) -> onnx.ModelProto:
    """A copy where each activation QuantizeLinear first adds U(-a, a) x its scale to its input."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    nodes = []
    for i, node in enumerate(graph.node):
        if node.op_type == "QuantizeLinear" and not _is_constant(graph, node.input[0]):
            x, scale = node.input[0], node.input[1]
            noise, step, moved = (f"_dither{i}_{k}" for k in ("noise", "step", "x"))
            nodes += [helper.make_node("RandomUniformLike", [x], [noise], low=-amplitude, high=amplitude,
                                       seed=float(seed * 100003 + i), dtype=onnx.TensorProto.FLOAT),
                      helper.make_node("Mul", [noise, scale], [step]),
                      helper.make_node("Add", [x, step], [moved])]
            node.input[0] = moved
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def count_activation_quantisers(path: str) -> int:
    graph = onnx.load(path).graph
    return sum(1 for n in graph.node if n.op_type == "QuantizeLinear" and not _is_constant(graph, n.input[0]))


class QdqRunner:
    """Runs an edge-track INT8 model (contract graph, plus its step graph when cached) on feeds.

    simulated: graph optimisation off (float simulation of the quantisation, no INT8 kernel);
    otherwise onnxruntime's INT8 kernels, as the runtime runs them. dither_seed (simulated only):
    run the dithered copies. Returns pred_boxes (normalised cx, cy, w, h), shape (feeds, 4).
    """

    def __init__(self, path: str, *, simulated: bool, dither_seed: int | None = None, graphs=None) -> None:
        graphs = graphs or {"contract": onnx.load(path)}
        if "step" not in graphs and os.path.isfile(step_path_for(path)):
            graphs["step"] = onnx.load(step_path_for(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        if simulated:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.sessions = {}
        for name, proto in graphs.items():
            if dither_seed is not None:
                proto = dithered(proto, dither_seed)
            self.sessions[name] = ort.InferenceSession(proto.SerializeToString(), options,
                                                       providers=["CPUExecutionProvider"])

    def boxes(self, feeds) -> np.ndarray:
        out = []
        contract, step = self.sessions["contract"], self.sessions.get("step")
        names = [o.name for o in contract.get_outputs()]
        for feed in feeds:
            inputs = {k: feed[k] for k in ("template", "online_template", "search")}
            result = dict(zip(names, contract.run(names, inputs)))
            if step is not None:
                result = dict(zip(OUTPUT_NAMES, step.run(list(OUTPUT_NAMES), {"search": feed["search"],
                                                                               KV_NAME: result[KV_NAME]})))
            out.append(np.asarray(result["pred_boxes"], np.float64).reshape(-1, 4).mean(0))
        return np.asarray(out)


def int8_reference(path: str, feeds, graphs=None):
    """(simulated boxes, the max abs difference INT8 kernels may show from them), per ``feeds``."""
    simulated = QdqRunner(path, simulated=True, graphs=graphs).boxes(feeds)
    spread = max(float(np.abs(QdqRunner(path, simulated=True, dither_seed=s, graphs=graphs).boxes(feeds)
                              - simulated).max()) for s in DITHER_SEEDS)
    return simulated, STEPS_ALLOWED * spread


def with_wrong_dequant_scale(graph: onnx.ModelProto, factor: float, which: int = -1) -> onnx.ModelProto:
    """A copy that dequantises one activation (the ``which``-th) at ``factor`` times its scale."""
    graph = onnx.ModelProto.FromString(graph.SerializeToString())
    g = graph.graph
    quantised = {n.output[0] for n in g.node if n.op_type == "QuantizeLinear" and not _is_constant(g, n.input[0])}
    dq = [n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in quantised][which]
    g.initializer.append(onnx.numpy_helper.from_array(np.array(factor, np.float32), "_wrong_factor"))
    g.node.insert(0, helper.make_node("Mul", [dq.input[1], "_wrong_factor"], ["_wrong_scale"]))
    dq.input[1] = "_wrong_scale"
    return graph
