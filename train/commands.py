"""``edge-track`` sub-commands that need PyTorch, registered through an entry point.

This module imports no torch at import time: registering the parser costs nothing, and a
runtime-only install gets a one-line hint instead of an ImportError.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from edge.errors import ConfigError, EdgeTrackError


def _require_torch() -> None:
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
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
    p.add_argument("--regrid", action="store_true",
                   help="the checkpoint has another search size at the same scale (e.g. nanostem weights "
                        "for --variant nanostem224): lay its weights out for --variant (train/regrid.py)")
    p.add_argument("--format", choices=["onnx", "tflite"], default="onnx",
                   help="onnx (default; MODEL.onnx + MODEL.step.onnx) or tflite (one file, two signatures)")
    p.add_argument("--tflite-quantize", choices=["none", "dynamic-int8"], default="none",
                   help="with --format tflite: dynamic-range INT8 weights (the fast CPU variant)")
    p.add_argument("--output", "-o", required=True, metavar="MODEL.onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-cache", action="store_true",
                   help="write only the full graph (no template-cache step graph MODEL.step.onnx)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="ONNX: a dynamic batch axis N (default: batch 1, which runs faster, INT8 above all)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch check")
    p.add_argument("--size-update-rate", type=float, metavar="R",
                   help="tracking setting written into the metadata: fraction of each predicted size change "
                        "applied, (0, 1] (default: the preset's); choose it on a validation split")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    _require_torch()
    from train.checkpoint import load_model
    from train.export import BOX_TOLERANCE, export_onnx
    from train.model import build_model
    from train.presets import get_preset

    if args.regrid and not (args.checkpoint and args.variant):
        raise ConfigError("--regrid needs --checkpoint and the --variant to lay its weights out for")
    if args.regrid:
        from train.regrid import load_regridded

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
        from train.export_tflite import export_tflite

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


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise EdgeTrackError("this command needs the onnx package: pip install 'edge-track[train]'") from None


def register_quantize(subparsers) -> None:
    p = subparsers.add_parser(
        "quantize", help="INT8 (static or dynamic) or FP16 copy of an edge-track ONNX model",
        description="Post-training quantisation. With --calib: static INT8 (QDQ, per-channel weights, "
                    "MatMul/Gemm/Conv only), calibrated on real network inputs. Without: dynamic INT8, "
                    "which needs no data. --precision fp16 converts for GPU execution providers.")
    p.add_argument("--model", required=True, metavar="M.onnx", help="fp32 model from edge-track export")
    p.add_argument("--output", "-o", required=True, metavar="OUT.onnx")
    p.add_argument("--calib", metavar="SRC",
                   help="video, image folder, annotated sequence folder(s), or .npz of recorded inputs")
    p.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax",
                   help="activation range calibration (default minmax)")
    p.add_argument("--samples", type=int, default=64, help="calibration samples (default 64)")
    p.add_argument("--precision", choices=["int8", "fp16"], default="int8")
    p.add_argument("--ops", metavar="OP,OP",
                   help="operator types to quantise, from MatMul,Gemm,Conv (default: all three; "
                        "MatMul,Gemm for models with a CNN stem)")
    p.add_argument("--reduce-range", action="store_true",
                   help="7-bit weights: the same integer results on x86 without VNNI as on aarch64 "
                        "(8-bit weights saturate there), at the same speed")
    p.set_defaults(func=run_quantize)


def run_quantize(args: argparse.Namespace) -> int:
    _require_onnx()
    from train.calibration_data import calibration_feeds
    from train.onnx_files import load_with_meta
    from train.quantize import convert_fp16, quantize_model

    if args.precision == "fp16":
        if args.calib:
            raise ConfigError("--calib is for INT8; FP16 needs no calibration")
        report = convert_fp16(args.model, args.output)
    else:
        feeds = None
        if args.calib:
            _, meta = load_with_meta(args.model)
            feeds = calibration_feeds(args.calib, meta, samples=args.samples)
        else:
            print("no --calib: dynamic INT8 (weights only; give --calib for static INT8)", file=sys.stderr)
        ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else None
        report = quantize_model(args.model, args.output, feeds=feeds, method=args.method, ops=ops,
                                reduce_range=args.reduce_range)
    written = report.path + (f" + {report.step_path}" if report.step_path else "")
    extra = f", {report.samples} calibration samples" if report.samples else ""
    print(f"wrote {written} ({report.size_bytes / 1e6:.1f} MB): {report.mode}{extra}")
    return 0


def _thread_list(text: str) -> list[int]:
    """argparse type: '2' or '1,2' -> [2] or [1, 2], each a positive integer."""
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts such as 2 or 1,2, got {text!r}")
    return counts


def register_bench(subparsers) -> None:
    from train.presets import PRESETS

    p = subparsers.add_parser(
        "bench", help="every available engine side by side: latency, RSS, size, accuracy retention",
        description="Measure, in one run, the official-style PyTorch fp32 baseline and every engine this "
                    "machine can run (onnxruntime fp32 full/cached, INT8 static/dynamic, TFLite, ...) on "
                    "real frames, each engine in its own runtime-only process. Prints a markdown table "
                    "with speed-ups over the baseline.")
    p.add_argument("--variant", choices=list(PRESETS), default=None,
                   help="preset (default: from --checkpoint, else S)")
    p.add_argument("--checkpoint", metavar="CKPT", help="weights (default: seeded random weights)")
    p.add_argument("--sequences", metavar="DIR", help="annotated sequences (default: the bundled sample clip)")
    p.add_argument("--max-frames", type=int, default=60, help="frames per sequence (default 60)")
    p.add_argument("--threads", type=_thread_list, default=None, metavar="N[,N...]",
                   help="inference threads; several (e.g. 1,2) time every row at each, in one run "
                        "(default: physical cores)")
    p.add_argument("--engines", nargs="*", metavar="NAME", help="only engines whose name contains one of these")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PNG", help="latency vs accuracy plot")
    p.add_argument("--workdir", metavar="DIR", help="keep the built models here")
    p.add_argument("--extra-model", action="append", default=[], metavar="MODEL",
                   help="also measure this model file (e.g. a QAT export, against post-training INT8)")
    p.add_argument("--model", metavar="M.onnx", help="the default-model row (default: the bundled model)")
    p.add_argument("--nanotrack-dir", metavar="DIR",
                   help="NanoTrack's ONNX files for its peer row (default: ../shared/models/opencv if present)")
    p.add_argument("--upstream-nanotrack", action="append", default=[], metavar="DIR",
                   help="also time NanoTrack's own tracking loop on onnxruntime on the two files in DIR "
                        "(V2 or V3; repeatable), beside OpenCV's")
    p.add_argument("--vittrack-model", metavar="FILE",
                   help="also time VitTrack (this ONNX file) through OpenCV's cv2.TrackerVit and through the "
                        "runtime's own loop on onnxruntime")
    p.add_argument("--no-profile", action="store_true", help="skip the operator profile of the best INT8 engine")
    p.add_argument("--rounds", type=int, default=1, metavar="R",
                   help="run every engine R times, taking turns, and report medians over rounds "
                        "(for machines whose speed drifts; default 1)")
    p.add_argument("--pace", type=float, default=None, metavar="FPS",
                   help="give every engine its frames at this rate, as a camera does (threads idle between "
                        "frames), instead of back to back (default)")
    p.set_defaults(func=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    _require_torch()
    import json
    import os

    from edge.sample import SAMPLE_DIR
    from train.bench import format_table, plot_png, run_bench
    from train.checkpoint import load_model
    from train.model import build_model
    from train.presets import get_preset

    if args.checkpoint:
        model, sha = load_model(args.checkpoint, args.variant)
    else:
        model, sha = build_model(get_preset(args.variant or "S"), seed=0), ""
        print("note: seeded random weights (give --checkpoint for real accuracy numbers)", file=sys.stderr)
    sequences = args.sequences or os.path.dirname(SAMPLE_DIR)
    report = run_bench(model, sha, sequences, threads=args.threads, max_frames=args.max_frames,
                       workdir=args.workdir, only=args.engines, extra_models=args.extra_model,
                       log=lambda m: print(m, file=sys.stderr), default_model=args.model,
                       nanotrack_dir=args.nanotrack_dir, profile=not args.no_profile, rounds=args.rounds,
                       pace_fps=args.pace, upstream_nanotrack=tuple(args.upstream_nanotrack),
                       vittrack_model=args.vittrack_model)
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    if args.plot:
        plot_png(report, args.plot)
    return 0


def register_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train / distil a MixFormerV2 from a YAML config (stages: distill, deep_to_shallow, score)",
        description="Run one training stage from a config (see train/configs/). Multi-GPU / multi-process: "
                    "--nproc N (or launch 'python -m train.run_training CONFIG' with torchrun).")
    p.add_argument("config", metavar="CONFIG.yaml")
    p.add_argument("--nproc", type=int, default=1, help="processes on this machine (DDP; gloo on CPU)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint_last.pth.tar")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N optimiser steps (smoke runs)")
    p.set_defaults(func=run_train_command)


def run_train_command(args: argparse.Namespace) -> int:
    _require_torch()
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
