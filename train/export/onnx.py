"""Export a MixFormerV2 to self-describing ONNX and prove onnxruntime agrees with PyTorch.

With the template cache (the default) two graphs are written:

- ``MODEL.onnx``: the graph contract (template, online_template, search -> pred_boxes,
  pred_scores) plus one extra output, ``template_kv``: every layer's template keys/values;
- ``MODEL.step.onnx``: (search, template_kv -> pred_boxes, pred_scores), the per-frame graph.

The templates never attend to the search tokens, so running the step graph on cached K/V equals
the full forward exactly; the runtime runs the contract graph only when the templates change.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn as nn

import edge
from edge.engines.model_meta import (
    INPUT_NAMES,
    KV_NAME,
    OUTPUT_NAMES,
    STEP_INPUT_NAMES,
    ModelMeta,
    holds_box_by_default,
)
from edge.engines.onnx import open_session
from edge.errors import ModelError
from edge.io.atomic_file import atomic_paths
from train.export.onnx_files import set_meta, step_path_for
from train.models.model import MixFormerV2

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
    step_path: str | None = None


def model_meta(model: MixFormerV2, checkpoint_sha256: str = "", step_file: str = "") -> ModelMeta:
    cfg = model.cfg
    # NanoTrack's stem was trained on raw BGR 0..255: the normaliser's x/255*255 hands it that.
    pixels = dict(mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3, color_order="BGR") if cfg.stem == "nanotrack" else {}
    return ModelMeta(
        preset=cfg.name, template_size=cfg.template_size, search_size=cfg.search_size,
        search_factor=cfg.search_factor, bins=cfg.bins, update_interval=cfg.update_interval,
        size_update_rate=cfg.size_update_rate,
        hold_low_score_box=holds_box_by_default({"extra": {"stem": cfg.stem}}),
        checkpoint_sha256=checkpoint_sha256, graph="cached" if step_file else "full",
        step_file=step_file, **pixels,
        extra={"stem": cfg.stem, "edge_track_version": edge.__version__, "embed_dim": cfg.embed_dim,
               "depth": cfg.depth, "num_heads": cfg.num_heads, "mlp_ratio": cfg.mlp_ratio,
               "patch_size": cfg.patch_size,
               **({"box_mode_window": cfg.box_mode_window} if cfg.box_mode_window else {})},
    )


def stack_kv(cache) -> torch.Tensor:
    """[(k, v) per layer], each (N, h, M, d) -> (N, layers, 2, h, M, d)."""
    return torch.stack([torch.stack([k, v], dim=1) for k, v in cache], dim=1)


def unstack_kv(kv: torch.Tensor):
    return [(kv[:, i, 0], kv[:, i, 1]) for i in range(kv.shape[1])]


class ContractWithCache(nn.Module):
    """The contract graph computed through the cache, also returning the cache."""

    def __init__(self, model: MixFormerV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, template, online_template, search):
        cache = self.model.forward_templates(template, online_template)
        boxes, scores = self.model.forward_search(search, cache)
        return boxes, scores, stack_kv(cache)


class SearchStep(nn.Module):
    """The per-frame graph: search crop + cached template K/V -> box and score."""

    def __init__(self, model: MixFormerV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, search, template_kv):
        return self.model.forward_search(search, unstack_kv(template_kv))


def fold_attention_scale(model: MixFormerV2) -> MixFormerV2:
    """A copy whose q projection already includes the 1/sqrt(head_dim) scale.

    Removes one Mul per layer (and, in INT8 graphs, its quantise/dequantise pair). For head_dim 64
    the scale is 0.125, a power of two, so the folded weights are exact.
    """
    import copy

    folded = copy.deepcopy(model)
    with torch.no_grad():
        for block in folded.backbone.blocks:
            attn = block.attn
            dim = attn.qkv.in_features
            attn.qkv.weight[:dim] *= attn.scale
            attn.qkv.bias[:dim] *= attn.scale
            attn.scale = 1.0
    return folded.eval()


def random_inputs(model: MixFormerV2, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Normalised-image-like inputs (roughly unit variance), reproducible."""
    g = torch.Generator().manual_seed(seed)
    t, s = model.cfg.template_size, model.cfg.search_size
    return (torch.randn(batch, 3, t, t, generator=g), torch.randn(batch, 3, t, t, generator=g),
            torch.randn(batch, 3, s, s, generator=g))


def to_onnx(module: nn.Module, args, input_names, output_names, opset: int,
            dynamic_batch: bool = False) -> onnx.ModelProto:
    """TorchScript-based export: the exporter that still emits opset <= 17 for older devices.

    The batch axis is fixed at the sample's (1) unless ``dynamic_batch``: with every shape known,
    onnxruntime turns each Linear's MatMul + Add into one Gemm, which INT8 runs as QGemm instead
    of QLinearMatMul + requantise + Add, and TensorRT needs no optimisation profile.
    """
    buffer = io.BytesIO()
    axes = {n: {0: "N"} for n in (*input_names, *output_names)} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), args, buffer, dynamo=False, opset_version=opset,
                          input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=axes)
    proto = onnx.load_from_string(buffer.getvalue())
    proto.producer_name = "edge-track"
    return proto


def export_onnx(model: MixFormerV2, output: str, *, opset: int = 17, checkpoint_sha256: str = "",
                cached: bool = True, check: bool = True, dynamic_batch: bool = False, fold_scale: bool = True,
                box_tolerance: float = BOX_TOLERANCE, score_tolerance: float = SCORE_TOLERANCE,
                precision: str = "fp32") -> ExportReport:
    """Write ``output`` (and ``output``'s step graph when cached) and check it against PyTorch.

    A quantisation-aware model (train/export/qat.py) exports with ``fold_scale=False`` (its quantisers
    were fitted to the unfolded projection), looser bounds and ``precision="int8"``.
    """
    model = model.eval()
    graph_model = fold_attention_scale(model) if fold_scale else model
    step_path = step_path_for(output) if cached else None
    step_file = os.path.basename(step_path) if cached else ""
    meta = model_meta(model, checkpoint_sha256, step_file).replace(precision=precision)
    t, ot, s = random_inputs(model, batch=1, seed=0)
    files = {}
    if cached:
        contract = to_onnx(ContractWithCache(graph_model), (t, ot, s), INPUT_NAMES, (*OUTPUT_NAMES, KV_NAME),
                           opset, dynamic_batch)
        with torch.no_grad():
            kv = stack_kv(graph_model.forward_templates(t, ot))
        step = to_onnx(SearchStep(graph_model), (s, kv), STEP_INPUT_NAMES, OUTPUT_NAMES, opset, dynamic_batch)
        files[step_path] = set_meta(step, meta)
    else:
        contract = to_onnx(graph_model, (t, ot, s), INPUT_NAMES, OUTPUT_NAMES, opset, dynamic_batch)
    contract.doc_string = f"MixFormerV2-{meta.preset} tracker exported by edge-track {edge.__version__}"
    files[output] = set_meta(contract, meta)
    for proto in files.values():
        onnx.checker.check_model(proto)

    diffs = [float("nan"), float("nan")]

    def verify(tmp_paths):
        if not check:
            return
        diffs[:] = compare_with_torch(model, tmp_paths[output], tmp_paths.get(step_path),
                                      batch=2 if dynamic_batch else 1)
        if not (diffs[0] <= box_tolerance and diffs[1] <= score_tolerance):
            raise ModelError(f"exported graph disagrees with PyTorch: box max abs diff {diffs[0]:.2e} "
                             f"(limit {box_tolerance:g}), score {diffs[1]:.2e} (limit {score_tolerance:g})")

    with atomic_paths(list(files)) as tmp_paths:   # synced and renamed together, or none is written
        for path, proto in files.items():
            onnx.save(proto, tmp_paths[path])
        verify(tmp_paths)
    size = sum(os.path.getsize(p) for p in files)
    return ExportReport(output, meta, diffs[0], diffs[1], size, step_path)


def compare_with_torch(model: MixFormerV2, onnx_path: str, step_path: str | None = None,
                       batch: int = 1, seed: int = 1, rounds: int = 3):
    """Max abs differences (boxes, score logits) between onnxruntime and PyTorch's plain forward.

    With a step graph, both paths are checked: the contract graph, and the step graph fed with the
    template K/V the contract graph returned. ``rounds`` independent random draws.
    """
    session = open_session(onnx_path)
    step = open_session(step_path) if step_path is not None else None
    worst = [0.0, 0.0]
    for r in range(rounds):
        box_diff, score_diff = _compare_once(model, session, step, batch, seed + r)
        worst = [max(worst[0], box_diff), max(worst[1], score_diff)]
    return worst[0], worst[1]


def _compare_once(model, session, step, batch, seed):
    inputs = random_inputs(model, batch=batch, seed=seed)
    with torch.no_grad():
        boxes, scores = (x.numpy() for x in model(*inputs))
    feeds = {n: x.numpy() for n, x in zip(INPUT_NAMES, inputs)}
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, feeds)))
    results = [(outputs["pred_boxes"], outputs["pred_scores"])]
    if step is not None:
        results.append(step.run(list(OUTPUT_NAMES), {"search": feeds["search"], KV_NAME: outputs[KV_NAME]}))
    box_diff = max(float(np.abs(b - boxes).max()) for b, _ in results)
    score_diff = max(float(np.abs(sc - scores).max()) for _, sc in results)
    return box_diff, score_diff
