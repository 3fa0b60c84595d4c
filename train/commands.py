"""``edge-track`` sub-commands that need PyTorch, registered through an entry point.

This module imports no torch at import time: registering the parser costs nothing, and a
runtime-only install gets a one-line hint instead of an ImportError.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from edge.errors import ConfigError, EdgeTrackError


def _require(*modules: str) -> None:
    """One line naming the first missing package of the training extra, never an ImportError."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise EdgeTrackError(f"this command needs the training extra ({exc.name} is missing): "
                                 f"pip install 'edge-track[train]'") from None


def _command(subparsers, name: str, run, summary: str, description: str) -> argparse.ArgumentParser:
    """A sub-command: its line in ``edge-track --help``, its ``--help`` text and the function it runs."""
    p = subparsers.add_parser(name, help=summary, description=description)
    p.set_defaults(func=run)
    return p


def register_export(subparsers) -> None:
    from train.models.presets import PRESETS

    p = _command(subparsers, "export", run_export,
                 "convert a MixFormerV2 checkpoint into a self-describing ONNX model",
                 "Convert a MixFormerV2 checkpoint (official .pth.tar or a state dict) into an ONNX file that "
                 "carries everything the runtime needs, then check that onnxruntime agrees with PyTorch on "
                 "random inputs.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="CKPT", help="official .pth.tar or a state-dict file")
    src.add_argument("--seed", type=int, metavar="N",
                     help="no checkpoint: seeded random weights (a pipeline check; it will not track)")
    p.add_argument("--variant", choices=list(PRESETS), default=None,
                   help="model preset; default: the one the checkpoint's shapes fit (required with --seed)")
    p.add_argument("--regrid", action="store_true",
                   help="the checkpoint has another search size at the same scale (e.g. nanostem weights "
                        "for --variant nanostem224): lay its weights out for --variant (train/weights/regrid.py)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx",
                   help="onnx (default; MODEL.onnx + MODEL.step.onnx) or tflite (one file, two signatures)")
    p.add_argument("--tflite-quantize", choices=["none", "dynamic-int8"], default="none",
                   help="with --format tflite: dynamic-range INT8 weights (the fast CPU variant; default none)")
    p.add_argument("--output", "-o", required=True, metavar="MODEL.onnx",
                   help="the model file to write (ONNX: its step graph MODEL.step.onnx beside it)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-cache", action="store_true",
                   help="write only the full graph (no template-cache step graph MODEL.step.onnx)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="ONNX: a dynamic batch axis N (default: batch 1, which runs faster, INT8 above all)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch check")
    p.add_argument("--size-update-rate", type=float, metavar="R",
                   help="tracking setting written into the metadata: fraction of each predicted size change "
                        "applied, (0, 1] (default: the preset's); choose it on a validation split")


def run_export(args: argparse.Namespace) -> int:
    _require("torch", "onnx")
    from train.export.onnx import BOX_TOLERANCE, export_onnx
    from train.models.model import build_model
    from train.models.presets import get_preset
    from train.weights.checkpoint import load_model

    if args.regrid and not (args.checkpoint and args.variant):
        raise ConfigError("--regrid needs --checkpoint and the --variant to lay its weights out for")
    if args.regrid:
        from train.weights.regrid import load_regridded

        model, sha = load_regridded(args.checkpoint, args.variant)
        source = f"{args.checkpoint} (regridded to {args.variant})"
    elif args.checkpoint:
        model, sha = load_model(args.checkpoint, args.variant)
        source = args.checkpoint
    else:
        if args.variant is None:
            raise ConfigError("--seed needs --variant (which preset to build)")
        model, sha = build_model(get_preset(args.variant), seed=args.seed), ""
        source = f"seeded random weights (seed {args.seed})"
        print(f"warning: exporting {source}: the model will not track anything", file=sys.stderr)
    if args.size_update_rate is not None:
        if not 0 < args.size_update_rate <= 1:
            raise ConfigError(f"--size-update-rate must be in (0, 1], got {args.size_update_rate:g}")
        # The metadata is written from the model's config: the tracking setting travels with the file.
        model.cfg = dataclasses.replace(model.cfg, size_update_rate=args.size_update_rate)
    if args.format == "tflite":
        from train.export.tflite import export_tflite

        q = None if args.tflite_quantize == "none" else args.tflite_quantize
        tfl = export_tflite(model, args.output, checkpoint_sha256=sha, quantize=q, check=not args.no_check)
        print(f"wrote {tfl.path} ({tfl.size_bytes / 1e6:.1f} MB): MixFormerV2-{model.cfg.name} from {source}; "
              f"LiteRT vs PyTorch box max abs diff {tfl.box_max_abs_diff:.2e}")
        return 0
    report = export_onnx(model, args.output, opset=args.opset, checkpoint_sha256=sha,
                         cached=not args.no_cache, check=not args.no_check, dynamic_batch=args.dynamic_batch)
    written = report.path + (f" + {report.step_path}" if report.step_path else "")
    print(f"wrote {written} ({report.size_bytes / 1e6:.1f} MB): MixFormerV2-{report.meta.preset} "
          f"from {source}")
    if not args.no_check:
        print(f"onnxruntime vs PyTorch on random inputs: box max abs diff {report.box_max_abs_diff:.2e} "
              f"(limit {BOX_TOLERANCE:g}), score logit {report.score_max_abs_diff:.2e}")
    return 0


def register_quantize(subparsers) -> None:
    p = _command(subparsers, "quantize", run_quantize,
                 "INT8 (static or dynamic) or FP16 copy of an edge-track ONNX model",
                 "Post-training quantisation. With --calib: static INT8 (QDQ, per-channel weights, MatMul/Gemm/Conv "
                 "only), activation ranges measured on real network inputs. Without: dynamic INT8, which needs no "
                 "data. --precision fp16 converts for GPU execution providers.")
    p.add_argument("--model", required=True, metavar="M.onnx", help="fp32 model from edge-track export")
    p.add_argument("--output", "-o", required=True, metavar="OUT.onnx",
                   help="the quantised model to write (its step graph OUT.step.onnx beside it)")
    p.add_argument("--calib", metavar="SRC",
                   help="video, image folder, annotated sequence folder(s), or .npz of recorded inputs")
    p.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax",
                   help="how activation ranges are set from the INT8 inputs (default minmax)")
    p.add_argument("--samples", type=int, default=64, help="INT8 input samples (default 64)")
    p.add_argument("--precision", choices=["int8", "fp16"], default="int8",
                   help="int8 for CPUs, fp16 for GPU execution providers (default int8)")
    p.add_argument("--ops", metavar="OP,OP",
                   help="operator types to quantise, from MatMul,Gemm,Conv (default: all three; "
                        "MatMul,Gemm for models with a CNN stem)")
    p.add_argument("--reduce-range", action="store_true",
                   help="7-bit weights: the same integer results on x86 without VNNI as on aarch64 "
                        "(8-bit weights saturate there), at the same speed")


def run_quantize(args: argparse.Namespace) -> int:
    _require("onnx")
    from train.export.int8_inputs import int8_feeds
    from train.export.onnx_files import load_with_meta
    from train.export.quantize import convert_fp16, quantize_model

    if args.precision == "fp16":
        if args.calib:
            raise ConfigError("--calib is for INT8; FP16 needs no INT8 inputs")
        report = convert_fp16(args.model, args.output)
    else:
        feeds = None
        if args.calib:
            _, meta = load_with_meta(args.model)
            feeds = int8_feeds(args.calib, meta, samples=args.samples)
        else:
            print("no --calib: dynamic INT8 (weights only; give --calib for static INT8)", file=sys.stderr)
        ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else None
        report = quantize_model(args.model, args.output, feeds=feeds, method=args.method, ops=ops,
                                reduce_range=args.reduce_range)
    written = report.path + (f" + {report.step_path}" if report.step_path else "")
    extra = f", {report.samples} calibration samples" if report.samples else ""
    print(f"wrote {written} ({report.size_bytes / 1e6:.1f} MB): {report.mode}{extra}")
    return 0


def register_bench(subparsers) -> None:
    """Extend the runtime's ``edge-track bench`` (edge/cli/bench.py) with the rows that need PyTorch."""
    from train.models.presets import PRESETS

    p = subparsers.choices.get("bench")
    if p is None:   # an edge-track without the runtime bench: nothing to extend
        return
    torch_rows = p.add_argument_group("PyTorch rows (need the training extra: pip install 'edge-track[train]')")
    torch_rows.add_argument("--variant", choices=list(PRESETS), default=None,
                            help="add the PyTorch fp32 baseline and the engines built from this preset "
                                 "(default: from --checkpoint; with neither, no PyTorch rows)")
    torch_rows.add_argument("--checkpoint", metavar="CKPT",
                            help="weights for those rows (default with --variant: seeded random weights, "
                                 "speed only)")
    torch_rows.add_argument("--calib-samples", type=int, default=32, metavar="N",
                            help="INT8 input samples for the static INT8 engine (default 32)")
    p.get_default("row_providers").append(pytorch_rows)


def pytorch_rows(args: argparse.Namespace, log):
    """The bench's row provider: None unless --variant or --checkpoint asks for PyTorch rows."""
    if not (args.variant or args.checkpoint):
        return None
    import importlib

    try:
        for name in ("torch", "onnx"):     # torch first: the one a runtime install lacks
            importlib.import_module(name)
    except ImportError as exc:
        from edge.errors import MissingExtra

        option = "--checkpoint" if args.checkpoint else "--variant"
        raise MissingExtra(f"{option} needs the training extra ({exc.name} is missing): "
                           "pip install 'edge-track[train]'") from None
    import os

    from edge.sample import SAMPLE_DIR
    from train.bench.pytorch_rows import PyTorchRows
    from train.models.model import build_model
    from train.models.presets import get_preset
    from train.weights.checkpoint import load_model

    if args.checkpoint:
        model, sha = load_model(args.checkpoint, args.variant)
    else:
        model, sha = build_model(get_preset(args.variant), seed=0), ""
        log("note: seeded random weights (give --checkpoint for real accuracy numbers)")
    return PyTorchRows(model, sha, args.sequences or os.path.dirname(SAMPLE_DIR), args.calib_samples)


def register_train(subparsers) -> None:
    p = _command(subparsers, "train", run_train_command,
                 "train / distil a MixFormerV2 from a YAML config (stages: distill, deep_to_shallow, score)",
                 "Run one training stage from a config (see train/configs/). Multi-GPU / multi-process: --nproc N "
                 "(or launch 'python -m train.run_training CONFIG' with torchrun).")
    p.add_argument("config", metavar="CONFIG.yaml", help="the training config (examples in train/configs/)")
    p.add_argument("--nproc", type=int, default=1, help="processes on this machine (DDP; gloo on CPU; default 1)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint_last.pth.tar")
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after N optimiser steps (smoke runs; default 0: the config's epochs)")


def run_train_command(args: argparse.Namespace) -> int:
    _require("torch", "onnx")
    import subprocess

    from train.config import load_train_config

    cfg = load_train_config(args.config)       # validate before starting any process
    if args.nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
               "-m", "train.run_training", args.config]
        cmd += ["--resume"] if args.resume else []
        cmd += [f"--max-steps={args.max_steps}"] if args.max_steps else []
        return subprocess.call(cmd)
    from train.trainer import train

    result = train(cfg, resume=args.resume, max_steps=args.max_steps or None)
    last = result["history"][-1] if result["history"] else {}
    print(f"trained {result['steps']} steps ({result['epochs_run']} epochs); "
          f"last loss {last.get('loss', float('nan')):.4f}; "
          f"wrote {result['checkpoint']} (MixFormerV2-{result['preset']})")
    return 0
