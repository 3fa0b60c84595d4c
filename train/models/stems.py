"""Pretrained convolutional stems: a CNN that turns a crop into a grid of tokens.

The default model (issue 7) cannot start from official MixFormerV2 weights, and a ViT trained
from scratch on the data available offline does not track. NanoTrack's backbone can: it is a
MobileNetV3-small trunk (9 stages, stride 16, 48 channels out) trained on large tracking
datasets, shipped by OpenCV under Apache-2.0 as ONNX. ``NanoTrackStem`` is that trunk written
out in PyTorch, and ``load_nanotrack_stem`` copies its weights from the ONNX file (its convs have
batch norm folded in, hence every conv has a bias).

Input: BGR, raw 0..255 values (NanoTrack's own convention; the model metadata says so, and the
runtime's normaliser produces exactly that). (B, 3, 16k, 16k) -> (B, 48, k, k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edge.errors import ModelError

STEM_CHANNELS = 48
STEM_STRIDE = 16


@dataclass(frozen=True)
class StageSpec:
    """One inverted-residual stage: in -> (1x1 expand) -> kxk depthwise -> (SE) -> 1x1 project."""

    cin: int
    expand: int          # 0: no 1x1 expansion (the depthwise conv works on the input directly)
    cout: int
    kernel: int
    stride: int
    se: int              # squeeze-excite bottleneck width, 0 for none
    act: str             # "relu" or "hswish"
    se_after_act: bool   # stage 1 applies SE after the activation, later stages before it


# Read off nanotrack_backbone_sim.onnx (features.1 .. features.8); features.0 is a 3x3 stride-2
# conv to 16 channels with hard-swish.
NANOTRACK_STAGES = (
    StageSpec(16, 0, 16, 3, 2, 8, "relu", True),
    StageSpec(16, 72, 24, 3, 2, 0, "relu", False),
    StageSpec(24, 88, 24, 3, 1, 0, "relu", False),
    StageSpec(24, 96, 40, 5, 2, 24, "hswish", False),
    StageSpec(40, 240, 40, 5, 1, 64, "hswish", False),
    StageSpec(40, 240, 40, 5, 1, 64, "hswish", False),
    StageSpec(40, 120, 48, 5, 1, 32, "hswish", False),
    StageSpec(48, 144, 48, 5, 1, 40, "hswish", False),
)


def _act(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.Hardswish()


class SqueezeExcite(nn.Module):
    # Files exported before 2026-11-30 ran this branch as two MatMuls (ReduceMean -> Linear); the
    # flag re-creates that graph (train/weights/recover_onnx.py needs its initialiser numbering).
    linear_form = False

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.linear_form:
            w = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
            return x * w[:, :, None, None]
        # The Linear weights applied as 1x1 convs on the pooled (B, C, 1, 1) map: the same numbers,
        # but the graph reads GlobalAveragePool -> Conv, which onnxruntime runs in its blocked conv
        # layout and dynamic INT8 (MatMul/Gemm only) leaves in fp32: twelve one-pixel INT8 MatMuls
        # per frame, each quantising its input at run time, were slower than these convs.
        w = F.adaptive_avg_pool2d(x, 1)                                          # (B, C, 1, 1)
        w = torch.relu(F.conv2d(w, self.fc1.weight[:, :, None, None], self.fc1.bias))
        w = F.hardsigmoid(F.conv2d(w, self.fc2.weight[:, :, None, None], self.fc2.bias))
        return x * w


class InvertedResidual(nn.Module):
    def __init__(self, spec: StageSpec) -> None:
        super().__init__()
        self.spec = spec
        mid = spec.expand or spec.cin
        self.expand = nn.Conv2d(spec.cin, mid, 1) if spec.expand else None
        self.depthwise = nn.Conv2d(mid, mid, spec.kernel, spec.stride, spec.kernel // 2, groups=mid)
        self.se = SqueezeExcite(mid, spec.se) if spec.se else None
        self.project = nn.Conv2d(mid, spec.cout, 1)
        self.act = _act(spec.act)
        self.residual = spec.stride == 1 and spec.cin == spec.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.expand(x)) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None and not self.spec.se_after_act:
            y = self.se(y)
        y = self.act(y)
        if self.se is not None and self.spec.se_after_act:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class NanoTrackStem(nn.Module):
    """(B, 3, H, W) BGR 0..255 -> (B, 48, H/16, W/16)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 2, 1)
        self.act = nn.Hardswish()
        self.stages = nn.Sequential(*(InvertedResidual(s) for s in NANOTRACK_STAGES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.act(self.conv(x)))


def stem_macs(size: int) -> float:
    """Multiply-accumulates of ``NanoTrackStem`` on a (size x size) crop (convs and SE layers)."""
    side = (size + 1) // 2
    macs = side * side * 16 * 3 * 9                                               # 3x3 stride-2 conv
    for spec in NANOTRACK_STAGES:
        mid = spec.expand or spec.cin
        if spec.expand:
            macs += side * side * spec.cin * mid
        side = (side + spec.stride - 1) // spec.stride
        macs += side * side * mid * spec.kernel ** 2                              # depthwise
        macs += 2 * mid * spec.se                                                 # squeeze-excite
        macs += side * side * mid * spec.cout
    return float(macs)


def _onnx_weights_in_order(path: str) -> list:
    """The backbone's weight tensors in graph order: (conv or gemm, [weight, bias])."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError("reading the NanoTrack backbone needs the 'onnx' package "
                         "(pip install edge-track[train])") from None
    try:
        graph = onnx.load(path).graph
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for unreadable files
        raise ModelError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return [(n.op_type, [init[i] for i in n.input[1:]]) for n in graph.node if n.op_type in ("Conv", "Gemm")]


def load_nanotrack_stem(stem: NanoTrackStem, onnx_path: str) -> NanoTrackStem:
    """Copy the weights of ``nanotrack_backbone_sim.onnx`` into ``stem`` (module order = graph order)."""
    tensors = _onnx_weights_in_order(onnx_path)
    targets = [m for m in stem.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if len(tensors) != len(targets):
        raise ModelError(f"{onnx_path}: {len(tensors)} conv/gemm layers, the NanoTrack stem has {len(targets)}")
    with torch.no_grad():
        for i, ((op, (weight, bias)), module) in enumerate(zip(tensors, targets)):
            if tuple(weight.shape) != tuple(module.weight.shape):
                raise ModelError(f"{onnx_path}: layer {i} ({op}) has shape {tuple(weight.shape)}, "
                                 f"expected {tuple(module.weight.shape)}: not NanoTrack's backbone")
            module.weight.copy_(torch.from_numpy(weight.copy()))
            module.bias.copy_(torch.from_numpy(bias.copy()))
    return stem
