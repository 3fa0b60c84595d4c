"""Export a MixFormerV2 to a self-describing ONNX file and prove the runtime agrees with it."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch

import edge
from edge.engines.onnx import open_session
from edge.errors import ModelError
from edge.model_meta import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, ModelMeta
from train.model import MixFormerV2

# Agreement required between onnxruntime and PyTorch on random inputs (issue contract).
BOX_TOLERANCE = 1e-4
SCORE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ExportReport:
    path: str
    meta: ModelMeta
    box_max_abs_diff: float
    score_max_abs_diff: float
    size_bytes: int


def model_meta(model: MixFormerV2, checkpoint_sha256: str = "") -> ModelMeta:
    cfg = model.cfg
    return ModelMeta(
        preset=cfg.name, template_size=cfg.template_size, search_size=cfg.search_size,
        search_factor=cfg.search_factor, bins=cfg.bins, update_interval=cfg.update_interval,
        checkpoint_sha256=checkpoint_sha256, graph="full",
        extra={"edge_track_version": edge.__version__, "embed_dim": cfg.embed_dim,
               "depth": cfg.depth, "num_heads": cfg.num_heads, "mlp_ratio": cfg.mlp_ratio,
               "patch_size": cfg.patch_size},
    )


def random_inputs(model: MixFormerV2, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Normalised-image-like inputs (roughly unit variance), reproducible."""
    g = torch.Generator().manual_seed(seed)
    t, s = model.cfg.template_size, model.cfg.search_size
    return (torch.randn(batch, 3, t, t, generator=g), torch.randn(batch, 3, t, t, generator=g),
            torch.randn(batch, 3, s, s, generator=g))


def export_onnx(model: MixFormerV2, output: str, *, opset: int = 17, checkpoint_sha256: str = "",
                check: bool = True) -> ExportReport:
    """Write ``output`` (graph contract + metadata) and, if ``check``, compare ORT with torch.

    The TorchScript-based exporter is used because it is the one that emits opset <= 17, which
    older onnxruntime and TensorRT builds on devices still need.
    """
    model = model.eval()
    meta = model_meta(model, checkpoint_sha256)
    dummy = random_inputs(model, batch=1, seed=0)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose
        torch.onnx.export(
            model, dummy, buffer, dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "N"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)},
        )
    graph = onnx.load_from_string(buffer.getvalue())
    graph.producer_name = "edge-track"
    graph.doc_string = f"MixFormerV2-{meta.preset} tracker exported by edge-track {edge.__version__}"
    onnx.helper.set_model_props(graph, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(graph)
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    # Write beside the target and rename, so a failed export never leaves half a model behind.
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=directory)
    os.close(fd)
    try:
        onnx.save(graph, tmp)
        box_diff, score_diff = compare_with_torch(model, tmp) if check else (float("nan"),) * 2
        if check and not (box_diff <= BOX_TOLERANCE and score_diff <= SCORE_TOLERANCE):
            raise ModelError(f"exported graph disagrees with PyTorch: box max abs diff {box_diff:.2e} "
                             f"(limit {BOX_TOLERANCE:g}), score {score_diff:.2e} (limit {SCORE_TOLERANCE:g})")
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return ExportReport(output, meta, box_diff, score_diff, os.path.getsize(output))


def compare_with_torch(model: MixFormerV2, onnx_path: str, batch: int = 2, seed: int = 1):
    """Max abs differences (boxes, score logits) between onnxruntime and PyTorch, random inputs."""
    inputs = random_inputs(model, batch=batch, seed=seed)
    with torch.no_grad():
        boxes, scores = model(*inputs)
    session = open_session(onnx_path, threads=None)
    ort_boxes, ort_scores = session.run(list(OUTPUT_NAMES),
                                        {n: x.numpy() for n, x in zip(INPUT_NAMES, inputs)})
    box_diff = float(np.abs(ort_boxes - boxes.numpy()).max())
    score_diff = float(np.abs(ort_scores - scores.numpy()).max())
    return box_diff, score_diff
