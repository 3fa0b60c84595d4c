"""``edge-track`` sub-commands that need PyTorch, registered through an entry point.

This module imports no torch at import time: registering the parser costs nothing, and a
runtime-only install gets a one-line hint instead of an ImportError.
"""

from __future__ import annotations

import argparse
import sys

from edge.errors import ConfigError, EdgeTrackError


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as exc:
        raise EdgeTrackError(f"this command needs the training extra ({exc.name} is missing): "
                             f"pip install 'edge-track[train]'") from None


def register_export(subparsers) -> None:
    from train.presets import PRESETS

    p = subparsers.add_parser(
        "export", help="convert a MixFormerV2 checkpoint into a self-describing ONNX model",
        description="Convert a MixFormerV2 checkpoint (official .pth.tar or a state dict) into an "
                    "ONNX file that carries everything the runtime needs, then check that "
                    "onnxruntime agrees with PyTorch on random inputs.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="CKPT", help="official .pth.tar or a state-dict file")
    src.add_argument("--seed", type=int, metavar="N",
                     help="no checkpoint: seeded random weights (a pipeline check; it will not track)")
    p.add_argument("--variant", choices=list(PRESETS), default=None,
                   help="model preset; default: the one the checkpoint's shapes fit (required with --seed)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format (default onnx)")
    p.add_argument("--output", "-o", required=True, metavar="MODEL.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-cache", action="store_true",
                   help="write only the full graph (no template-cache step graph MODEL.step.onnx)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch check")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    _require_torch()
    from train.checkpoint import load_model
    from train.export import BOX_TOLERANCE, export_onnx
    from train.model import build_model
    from train.presets import get_preset

    if args.checkpoint:
        model, sha = load_model(args.checkpoint, args.variant)
        source = args.checkpoint
    else:
        if args.variant is None:
            raise ConfigError("--seed needs --variant (which preset to build)")
        model, sha = build_model(get_preset(args.variant), seed=args.seed), ""
        source = f"seeded random weights (seed {args.seed})"
        print(f"warning: exporting {source}: the model will not track anything", file=sys.stderr)
    report = export_onnx(model, args.output, opset=args.opset, checkpoint_sha256=sha,
                         cached=not args.no_cache, check=not args.no_check)
    written = report.path + (f" + {report.step_path}" if report.step_path else "")
    print(f"wrote {written} ({report.size_bytes / 1e6:.1f} MB): MixFormerV2-{report.meta.preset} "
          f"from {source}")
    if not args.no_check:
        print(f"onnxruntime vs PyTorch on random inputs: box max abs diff {report.box_max_abs_diff:.2e} "
              f"(limit {BOX_TOLERANCE:g}), score logit {report.score_max_abs_diff:.2e}")
    return 0
