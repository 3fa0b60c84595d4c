"""Post-training quantisation of edge-track ONNX models (INT8) and FP16 conversion.

INT8 recipe (measured in ../shared/research/edge_ecosystem.md 1a): static QDQ, per-channel
weights, only MatMul/Gemm/Conv quantised. Quantising every op (residual adds, softmax, ...) costs
both time and about 20x the feature error. Dynamic INT8 (weights only, activations quantised per
call) needs no INT8 inputs and is the fallback.

A cached model is two graphs; both are quantised, the step graph's activation ranges measured on the
template K/V the fp32 contract graph produces for the same samples.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass

import onnx

from edge.engines.model_meta import KV_NAME, ModelMeta, step_path_for
from edge.engines.onnx import open_session
from edge.errors import ConfigError, ModelError
from train.export.onnx_files import load_with_meta, save_together, set_meta

QUANTIZED_OPS = ["MatMul", "Gemm", "Conv"]
# A pretrained CNN stem (MobileNet-style depthwise convs) keeps its convs in fp32: quantised, the
# nanostem model lost a third of its AUC on the dev sequences (measured; MODEL_CARD.md).
STEM_QUANTIZED_OPS = ["MatMul", "Gemm"]


def default_ops(meta: ModelMeta) -> list[str]:
    return STEM_QUANTIZED_OPS if meta.extra.get("stem", "patch") != "patch" else QUANTIZED_OPS
METHODS = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class QuantizeReport:
    path: str
    step_path: str | None
    mode: str
    samples: int
    size_bytes: int


class _Feeds:
    """onnxruntime CalibrationDataReader over a list of feed dicts."""

    def __init__(self, feeds):
        self._iter = iter(feeds)

    def get_next(self):
        return next(self._iter, None)

    def rewind(self):  # pragma: no cover - not used by the MinMax/Percentile/Entropy calibrators
        raise NotImplementedError


def _graph_paths(model_path: str, meta: ModelMeta):
    paths = {"contract": model_path}
    if meta.graph == "cached":
        step = step_path_for(model_path)
        if not os.path.isfile(step):
            step = os.path.join(os.path.dirname(os.path.abspath(model_path)), meta.step_file)
        if not os.path.isfile(step):
            raise ModelError(f"{model_path} needs its step graph {step_path_for(model_path)}, which is missing")
        paths["step"] = step
    return paths


def _plan(model_path: str, output: str, precision: str):
    """Checks shared by every conversion; returns (graph paths, step output path, new metadata)."""
    if os.path.abspath(output) == os.path.abspath(model_path):
        raise ConfigError("--output must differ from --model")
    _, meta = load_with_meta(model_path)
    if meta.precision != "fp32":
        raise ModelError(f"{model_path} is already {meta.precision}; convert the fp32 model")
    paths = _graph_paths(model_path, meta)
    step_out = step_path_for(output) if "step" in paths else None
    new_meta = meta.replace(precision=precision, step_file=os.path.basename(step_out) if step_out else "")
    return paths, step_out, new_meta


def _preprocessed(path: str, workdir: str) -> str:
    """Shape inference + ORT graph optimisation first: it is what turns MatMul + Add into Gemm."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = os.path.join(workdir, "pre_" + os.path.basename(path))
    quant_pre_process(path, out, skip_symbolic_shape=False)
    return out


def _step_feeds(contract_path: str, feeds):
    session = open_session(contract_path)
    out = []
    for feed in feeds:
        (kv,) = session.run([KV_NAME], feed)
        out.append({"search": feed["search"], KV_NAME: kv})
    return out


def quantize_model(model_path: str, output: str, *, feeds=None, method: str = "minmax",
                   ops: list[str] | None = None, reduce_range: bool = False) -> QuantizeReport:
    """INT8: static QDQ when ``feeds`` (contract-graph feed dicts) are given, dynamic otherwise.

    ops: operator types to quantise (default: ``default_ops`` of the model's metadata).
    reduce_range: 7-bit weights. x86 CPUs without VNNI (AVX2, AVX-512 before Cascade Lake)
    multiply uint8 x int8 with vpmaddubsw, whose 16-bit pair sums saturate at 8-bit weights, so
    their integer GEMMs differ from the exact ones aarch64 (and VNNI) computes: the same file then
    tracks differently on a Pi. With 7-bit weights no pair sum can saturate and every CPU gets the
    same integers, with the same kernels (no speed cost).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method not in METHODS:
        raise ConfigError(f"unknown activation-range method '{method}' (valid: {', '.join(METHODS)})")
    paths, step_out, new_meta = _plan(model_path, output, "int8")
    ops = list(ops) if ops else default_ops(new_meta)
    unknown = sorted(set(ops) - set(QUANTIZED_OPS))
    if unknown:
        raise ConfigError(f"cannot quantise op type '{unknown[0]}' (valid: {', '.join(QUANTIZED_OPS)})")
    range_method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
             "entropy": CalibrationMethod.Entropy}[method]
    per_graph_feeds = {"contract": feeds}
    if feeds is not None and "step" in paths:
        per_graph_feeds["step"] = _step_feeds(paths["contract"], feeds)

    files = {}
    with tempfile.TemporaryDirectory() as work:
        for role, src in paths.items():
            pre = _preprocessed(src, work)
            q_path = os.path.join(work, f"q_{role}.onnx")
            if feeds is None:
                quantize_dynamic(pre, q_path, op_types_to_quantize=ops, per_channel=True,
                                 weight_type=QuantType.QInt8, reduce_range=reduce_range)
            else:
                # onnxruntime prints its range-measuring progress to stdout; keep ours clean.
                with contextlib.redirect_stdout(io.StringIO()):
                    quantize_static(pre, q_path, _Feeds(per_graph_feeds[role]), quant_format=QuantFormat.QDQ,
                                    op_types_to_quantize=ops, per_channel=True,
                                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                    calibrate_method=range_method, reduce_range=reduce_range,
                                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
            proto = onnx.load(q_path)
            del proto.metadata_props[:]
            files[output if role == "contract" else step_out] = set_meta(proto, new_meta)
        save_together(files)
    size = sum(os.path.getsize(p) for p in files)
    mode = ("dynamic" if feeds is None else f"static-{method}") + ("-reduce-range" if reduce_range else "")
    return QuantizeReport(output, step_out, mode, 0 if feeds is None else len(feeds), size)


def convert_fp16(model_path: str, output: str) -> QuantizeReport:
    """FP16 weights and activations for GPU execution providers; inputs/outputs stay float32."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    paths, step_out, new_meta = _plan(model_path, output, "fp16")
    files = {}
    for role, src in paths.items():
        model = OnnxModel(onnx.load(src))
        # template_kv crosses between the two graphs: keep it float32 like the other I/O.
        model.convert_float_to_float16(keep_io_types=True)
        proto = model.model
        del proto.metadata_props[:]
        files[output if role == "contract" else step_out] = set_meta(proto, new_meta)
    save_together(files)
    return QuantizeReport(output, step_out, "fp16", 0, sum(os.path.getsize(p) for p in files))


def int8_kernel_counts(path: str) -> dict[str, int]:
    """Quantised op types in a model file (QDQ pairs before onnxruntime fuses them)."""
    proto = onnx.load(path)
    counts: dict[str, int] = {}
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeMatMul",
                            "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "QLinearMatMul"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


__all__ = ["quantize_model", "convert_fp16", "int8_kernel_counts", "METHODS"]
