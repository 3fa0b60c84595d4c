"""Export to TFLite / LiteRT with litert-torch (no TensorFlow), optionally dynamic-range INT8.

One .tflite file, two signatures sharing the weights: ``full`` (the contract, plus the template
K/V) and ``step`` (the per-frame graph on cached K/V). Dynamic-range INT8
(``ai_edge_quantizer``'s ``dynamic_wi8_afp32``) is the fast CPU variant; full-integer INT8 is
slower than fp32 for this transformer on XNNPACK (research notes, section 1b), so it is not offered.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

from edge.engines.model_meta import METADATA_KEY
from edge.errors import ConfigError, ModelError
from train.export.onnx import BOX_TOLERANCE, ContractWithCache, SearchStep, model_meta, random_inputs, stack_kv
from train.models.model import MixFormerV2

# Dynamic-range INT8 changes the numbers; it is judged by tracking accuracy, not this bound.
INT8_BOX_TOLERANCE = 5e-2
QUANTIZE_MODES = (None, "dynamic-int8")


@dataclass(frozen=True)
class TFLiteReport:
    path: str
    box_max_abs_diff: float
    size_bytes: int


def tflite_export_available() -> bool:
    try:
        import ai_edge_litert  # noqa: F401
        import litert_torch  # noqa: F401
    except ImportError:
        return False
    return True


def _with_metadata(model_bytes: bytes, name: str, value: bytes) -> bytes:
    """Add one TFLite metadata entry (flatbuffer object API from ai-edge-litert's schema)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    # Writers may keep big tensors after the flatbuffer (offset/size, relative to the file);
    # repacking moves the flatbuffer, so bring that data inline (fine below 2 GB).
    for b in model.buffers or []:
        if b.offset > 1 and b.size:
            b.data = np.frombuffer(model_bytes, dtype=np.uint8, count=b.size, offset=b.offset)
            b.offset, b.size = 0, 0
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(value, dtype=np.uint8)
    model.buffers = (model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != name] + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def export_tflite(model: MixFormerV2, output: str, *, checkpoint_sha256: str = "",
                  quantize: str | None = None, check: bool = True) -> TFLiteReport:
    if quantize not in QUANTIZE_MODES:
        raise ConfigError(f"unknown TFLite quantisation '{quantize}' (valid: none, dynamic-int8)")
    if not tflite_export_available():
        raise ModelError("TFLite export needs litert-torch and ai-edge-litert: pip install 'edge-track[tflite]'")
    import litert_torch
    from litert_torch import _config

    _config.config.show_progress = False
    model = model.eval()
    t, ot, s = random_inputs(model)
    with torch.no_grad():
        kv = stack_kv(model.forward_templates(t, ot))
        converted = (litert_torch
                     .signature("full", ContractWithCache(model).eval(),
                                sample_kwargs={"template": t, "online_template": ot, "search": s})
                     .signature("step", SearchStep(model).eval(), sample_kwargs={"search": s, "template_kv": kv})
                     .convert())
    with tempfile.TemporaryDirectory() as work:
        float_path = os.path.join(work, "float.tflite")
        converted.export(float_path)
        with open(float_path, "rb") as f:
            data = f.read()
        if quantize == "dynamic-int8":
            from ai_edge_quantizer import quantizer, recipe

            qt = quantizer.Quantizer(float_path)
            qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
            data = bytes(qt.quantize(enable_progress_report=False).quantized_model)
    precision = "int8" if quantize else "fp32"
    meta = model_meta(model, checkpoint_sha256).replace(graph="cached", step_file="signature:step",
                                                        precision=precision)
    data = _with_metadata(data, METADATA_KEY, meta.to_json().encode("utf-8"))
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".part.tflite", dir=directory)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model is an ordinary file
    try:
        diff = _compare(model, tmp) if check else float("nan")
        limit = INT8_BOX_TOLERANCE if quantize else BOX_TOLERANCE
        if check and not diff <= limit:
            raise ModelError(f"TFLite model disagrees with PyTorch: box max abs diff {diff:.2e} (limit {limit:g})")
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return TFLiteReport(output, diff, os.path.getsize(output))


def _compare(model: MixFormerV2, path: str) -> float:
    """Max abs box difference: the full signature and the step signature on its K/V, vs torch."""
    from edge.engines.tflite import TFLiteEngine

    engine = TFLiteEngine(path, threads=1)
    worst = 0.0
    for seed in (1, 2):
        t, ot, s = random_inputs(model, seed=seed)
        with torch.no_grad():
            boxes, _ = model(t, ot, s)
        engine.set_templates(t.numpy(), ot.numpy())
        out = engine.run(s.numpy())
        worst = max(worst, float(np.abs(out.box_cxcywh - boxes.numpy()[0]).max()))
    return worst
