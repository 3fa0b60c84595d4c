"""Quantisation-aware finetuning: fake-quant Linear layers that export to an ONNX QDQ graph which
onnxruntime runs with INT8 kernels (QGemm).

Each transformer Linear (qkv, proj, fc1, fc2) gets a fake-quantised input (uint8, per tensor,
ranges tracked by an EMA while training), per-channel symmetric int8 weights, and a fake-quantised
output. The output quantiser matters for export: onnxruntime fuses DequantizeLinear -> MatMul ->
QuantizeLinear into QGemm, but a MatMul whose output stays float gets fused with its bias Add first
(MatMulAddFusion) and then runs in float (../shared/research/edge_ecosystem.md, QAT notes).
The patch embedding and the small heads stay float.
"""

from __future__ import annotations

import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.models.model import MixFormerV2

QUANTISED = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")


class ActFakeQuant(nn.Module):
    """uint8 asymmetric per-tensor fake quantisation with EMA-tracked min/max."""

    def __init__(self, momentum: float = 0.05) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))
        self._seen = False     # a Python flag, so export traces no data-dependent branch

    def observed(self) -> bool:
        return self._seen

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._seen = bool(torch.isfinite(self.min_val))

    def qparams(self):
        lo = torch.clamp(self.min_val, max=0.0)
        hi = torch.clamp(self.max_val, min=0.0)
        scale = torch.clamp((hi - lo) / 255.0, min=1e-8)
        zero_point = torch.clamp(torch.round(-lo / scale), 0, 255).to(torch.int32)
        return scale, zero_point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.detach().min(), x.detach().max()
                if self.observed():
                    self.min_val.mul_(1 - self.momentum).add_(self.momentum * lo)
                    self.max_val.mul_(1 - self.momentum).add_(self.momentum * hi)
                else:
                    self.min_val.copy_(lo)
                    self.max_val.copy_(hi)
                    self._seen = True
        if not self.observed():
            return x
        scale, zero_point = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255)


class QATLinear(nn.Module):
    """A Linear with fake-quantised input, per-channel int8 weights and fake-quantised output."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.in_fq, self.out_fq = ActFakeQuant(), ActFakeQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_fq(x)
        scale = (self.weight.detach().abs().amax(dim=1) / 127.0).clamp_min(1e-8)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        w = torch.fake_quantize_per_channel_affine(self.weight, scale, zero, 0, -128, 127)
        return self.out_fq(F.linear(x, w, self.bias))


def prepare_qat(model: MixFormerV2) -> MixFormerV2:
    """A copy of ``model`` with every transformer Linear fake-quantised (weights shared with the copy)."""
    qmodel = copy.deepcopy(model)
    for block in qmodel.backbone.blocks:
        for path in QUANTISED:
            parent_name, child = path.split(".")
            parent = getattr(block, parent_name)
            setattr(parent, child, QATLinear(getattr(parent, child)))
    return qmodel


@torch.no_grad()
def init_ranges(qmodel: MixFormerV2, batches) -> None:
    """Initialise the activation ranges from a few batches (training-mode forwards, no update)."""
    was_training = qmodel.training
    qmodel.train()
    for batch in batches:
        qmodel(batch["template"], batch["online_template"], batch["search"])
    qmodel.train(was_training)


def float_state_dict(qmodel: MixFormerV2) -> dict:
    """The weights in the official layout (observer buffers dropped): loadable as a float model."""
    return {k: v for k, v in qmodel.state_dict().items() if ".in_fq." not in k and ".out_fq." not in k}


def export_qat_onnx(qmodel: MixFormerV2, output: str, checkpoint_sha256: str = "", tolerance: float = 0.02):
    """The QDQ graph pair (contract + step), checked against the fake-quant model in PyTorch."""
    from train.export.onnx import export_onnx

    qmodel = qmodel.eval()
    report = export_onnx(qmodel, output, checkpoint_sha256=checkpoint_sha256, fold_scale=False,
                         box_tolerance=tolerance, score_tolerance=10 * tolerance, precision="int8")
    return report


def int8_ops_after_optimisation(path: str) -> dict[str, int]:
    """Op types onnxruntime actually runs after its graph optimisation (QGemm etc. = INT8 kernels)."""
    import collections
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = os.path.join(tmp, "optimised.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    counts = collections.Counter(n.op_type for n in graph.node)
    return {k: v for k, v in counts.items() if k in ("QGemm", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat",
                                                     "DynamicQuantizeMatMul", "QLinearConv")}
