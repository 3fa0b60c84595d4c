"""Recover a training checkpoint from an exported model, so a shipped model can be finetuned after
its checkpoint is gone (checkpoints are never committed; the exported model always is).

Works for fp32 graphs and for dynamic INT8 ones (per-channel int8 weights are dequantised: quantising
the recovered model the same way gives back the same file). The parameter behind each anonymous
``onnx::MatMul_N`` / ``onnx::Conv_N`` weight is found by exporting a seeded model of the same preset
and matching values (files exported before 2026-11-30, with other graph forms, against those forms);
the exported attention-scale fold and the constant-folded prediction tokens are undone.

    python -m train.weights.recover_onnx MODEL.onnx OUT.pth.tar
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edge.engines.model_meta import METADATA_KEY, ModelMeta
from edge.errors import ModelError
from train.models.model import MixFormerV2, build_model
from train.models.presets import get_preset

_PREFIX = "model."


def _weights(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initialiser name (without the ``_quantized`` suffix) -> fp32 value, in the graph's orientation."""
    raw = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    out = {}
    for name, value in raw.items():
        if name.endswith(("_scale", "_zero_point")) and name.rsplit("_", 2)[0] + "_quantized" in raw:
            continue
        if name.endswith("_quantized"):
            base = name[: -len("_quantized")]
            zero = raw[base + "_zero_point"].astype(np.float32)
            weight = (value.astype(np.float32) - zero) * raw[base + "_scale"]   # per output channel (last axis)
            # Stored in MatMul orientation (in, out); some quantiser versions say so in the name.
            base = base.removesuffix("_Transposed")
            out[base] = weight
            out[base + "/orientation"] = np.array(1)
        elif value.dtype == np.float32:
            out[name] = value
    return out


def _legacy_forms(proto: onnx.ModelProto) -> dict[str, bool]:
    """Which of the graph forms of files exported before 2026-11-30 this file has: the stem's
    squeeze-excite as MatMuls, the box built with unbind/stack (ending in a Concat). The exporter
    numbers anonymous weights after every value in the graph, so recovering such a file needs an
    export of the same forms."""
    nodes = proto.graph.node
    return {"linear_form_excite": any(n.op_type == "ReduceMean" and "/se/" in n.name for n in nodes),
            "stack_form_box": any(n.op_type == "Concat" and "pred_boxes" in n.output for n in nodes)}


def _as_param(value: np.ndarray, shape: tuple) -> np.ndarray | None:
    """An anonymous initialiser in a parameter's layout: MatMul weights are W^T, the excite's
    1x1 conv weights W[:, :, None, None]; None when it cannot be that parameter."""
    if value.ndim == 2 and value.T.shape == shape:
        return value.T
    if value.ndim == 4 and value.shape[2:] == (1, 1) and value.shape[:2] == shape:
        return value[:, :, 0, 0]
    return None


def _anonymous_names(model: MixFormerV2, linear_form_excite: bool = False,
                     stack_form_box: bool = False) -> dict[str, str]:
    """``onnx::MatMul_N`` / ``onnx::Conv_N`` -> parameter name, by exporting this (seeded) model
    in the file's graph forms (``_legacy_forms``) and matching values."""
    from train.export.onnx import export_onnx
    from train.models.model import DistributionBoxHead
    from train.models.stems import SqueezeExcite

    state = model.state_dict()
    dim = model.cfg.embed_dim
    scale = model.backbone.blocks[0].attn.scale
    SqueezeExcite.linear_form, DistributionBoxHead.stack_form = linear_form_excite, stack_form_box
    try:
        with tempfile.TemporaryDirectory() as work:
            export_onnx(model, os.path.join(work, "m.onnx"), check=False)
            exported = {i.name: numpy_helper.to_array(i)
                        for i in onnx.load(os.path.join(work, "m.onnx")).graph.initializer}
    finally:
        SqueezeExcite.linear_form = DistributionBoxHead.stack_form = False
    names = {}
    for name, value in exported.items():
        if name.startswith(_PREFIX) or value.dtype != np.float32:
            continue
        for key, param in state.items():
            if param.ndim != 2 or (candidate := _as_param(value, tuple(param.shape))) is None:
                continue
            ref = param.numpy().copy()
            if key.endswith("attn.qkv.weight"):
                ref[:dim] *= scale
            if np.allclose(ref, candidate, atol=1e-6):
                names[name] = key
                break
    return names


def recover(path: str) -> MixFormerV2:
    """The model an edge-track ONNX file was exported from (its preset read from the metadata)."""
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"{path}: no edge-track metadata (not exported by edge-track)")
    meta = ModelMeta.from_json(props[METADATA_KEY])
    model = build_model(get_preset(meta.preset), seed=0).eval()
    state = model.state_dict()
    weights = _weights(proto)
    anonymous = _anonymous_names(model, **_legacy_forms(proto))
    dim = model.cfg.embed_dim
    scale = model.backbone.blocks[0].attn.scale
    new = {}
    for name, value in weights.items():
        if name.endswith("/orientation"):
            continue
        key = name[len(_PREFIX):] if name.startswith(_PREFIX) else anonymous.get(name)
        if key is None or key not in state:
            continue
        if name.startswith(_PREFIX) and name + "/orientation" in weights:
            value = value.T                      # quantised MatMul weights are stored (in, out)
        elif not name.startswith(_PREFIX):
            value = _as_param(value, tuple(state[key].shape))
            if value is None:                    # not that parameter's shape: reported as missing
                continue
        new[key] = torch.from_numpy(np.array(value, dtype=np.float32)).reshape(state[key].shape)
    for i in range(model.cfg.depth):            # undo export's fold of 1/sqrt(head_dim) into q
        for suffix in ("weight", "bias"):
            key = f"backbone.blocks.{i}.attn.qkv.{suffix}"
            if key in new:
                new[key] = new[key].clone()
                new[key][:dim] /= scale
    # The exporter folds reg_tokens + pos_embed_reg into one constant.
    tokens = [v for n, v in weights.items() if v.shape == (1, 4, dim) and not n.startswith(_PREFIX)]
    if len(tokens) == 1:
        new["backbone.reg_tokens"] = torch.from_numpy(tokens[0].copy())
        new["backbone.pos_embed_reg"] = torch.zeros(1, 4, dim)
    missing = [k for k in state if k not in new]
    if missing:
        raise ModelError(f"{path}: cannot recover parameter '{missing[0]}' (and {len(missing) - 1} more)")
    model.load_state_dict(new)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an edge-track .onnx (contract graph)")
    parser.add_argument("output", help="checkpoint to write (.pth.tar)")
    args = parser.parse_args(argv)
    from train.config import TrainConfig
    from train.weights.checkpoint import save_checkpoint

    try:
        model = recover(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    save_checkpoint(args.output, model, 0, TrainConfig(stage="frozen_stem", variant=model.cfg.name))
    print(f"wrote {args.output} (preset {model.cfg.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
