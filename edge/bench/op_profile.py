"""Where an onnxruntime model's time goes: its per-operator profile, grouped by the kind of work.

The bench compares an engine with the machine's GEMM peak (its FLOP ceiling); the GEMMs are the
only part that peak describes. This splits a frame into GEMMs, quantise/dequantise, transposes,
softmax, layer norms, convolutions, other ops, and what no operator accounts for (session
overhead: scheduling, thread wake-ups, allocations, input copies).
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

CATEGORIES = {
    "gemm": ("MatMul", "Gemm", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
             "QLinearMatMul", "QGemm", "MatMulNBits", "Attention", "MultiHeadAttention"),
    "quantize": ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"),
    "transpose": ("Transpose",),
    "softmax": ("Softmax",),
    "layernorm": ("LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"),
    "conv": ("Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv"),
}
CATEGORY_OF = {op: cat for cat, ops in CATEGORIES.items() for op in ops}


def category(op: str) -> str:
    return CATEGORY_OF.get(op, "other")


def aggregate(events: list[dict], runs: int | None = None) -> dict:
    """onnxruntime profile events -> milliseconds per run by category and by op type.

    Node events ("cat": "Node", name ending in "_kernel_time") carry the kernel's duration in
    microseconds; "model_run" session events carry each whole run. ``overhead_ms`` is the part of
    a run no kernel accounts for.
    """
    run_us = [e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    runs = runs or len(run_us) or 1
    by_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        op = (e.get("args") or {}).get("op_name", "?")
        by_op[op] = by_op.get(op, 0.0) + e["dur"] / 1e3 / runs
    by_category: dict[str, float] = {}
    for op, ms in by_op.items():
        by_category[category(op)] = by_category.get(category(op), 0.0) + ms
    kernels = sum(by_op.values())
    total = sum(run_us) / 1e3 / runs if run_us else kernels
    return {"runs": runs, "total_ms": total, "kernels_ms": kernels, "overhead_ms": max(0.0, total - kernels),
            "by_category_ms": dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
            "by_op_ms": dict(sorted(by_op.items(), key=lambda kv: -kv[1]))}


def profile_session(path: str, feeds_list: list[dict], threads: int | None = None, warmup: int = 3) -> dict:
    """Run ``path`` on each feed dict with profiling on; the aggregate per run (warm-up excluded)."""
    import onnxruntime as ort

    from edge.engines.onnx import session_options

    plain = ort.InferenceSession(path, sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    for feeds in feeds_list[:warmup]:
        plain.run(None, feeds)
    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        for feeds in feeds_list[:warmup]:
            session.run(None, feeds)
        for feeds in feeds_list:
            session.run(None, feeds)
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
    # The warm-up runs are in the file too: keep the last len(feeds_list) model runs only.
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    if len(runs) > len(feeds_list):
        start_index = runs[-len(feeds_list)]["ts"]
        events = [e for e in events if e.get("ts", 0) >= start_index]
    return aggregate(events, len(feeds_list))


def profile_engine_graph(model_path: str, template: np.ndarray, online_template: np.ndarray,
                         searches: list[np.ndarray], threads: int | None = None) -> dict:
    """Profile the graph the tracker runs every frame: the step graph of a cached model (its
    template K/V computed once, as the engine does), else the full graph."""
    import onnxruntime as ort

    from edge.engines.model_meta import KV_NAME, step_path_for
    from edge.engines.onnx import read_meta, session_options

    contract = ort.InferenceSession(model_path, sess_options=session_options(threads),
                                    providers=["CPUExecutionProvider"])
    meta = read_meta(contract, model_path)
    templates = {"template": template, "online_template": online_template}
    if meta.graph == "cached":
        step = step_path_for(model_path)
        if not os.path.isfile(step):
            step = os.path.join(os.path.dirname(os.path.abspath(model_path)), meta.step_file)
        (kv,) = contract.run([KV_NAME], {**templates, "search": searches[0]})
        return {"graph": "step", **profile_session(step, [{"search": s, KV_NAME: kv} for s in searches], threads)}
    return {"graph": "full", **profile_session(model_path, [{**templates, "search": s} for s in searches], threads)}
