"""``edge-track build-trt``: a TensorRT engine from an edge-track ONNX model, on the Jetson."""

from __future__ import annotations

from edge.cli.common import positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build-trt", help="build a TensorRT engine (FP16 by default) from an edge-track ONNX model",
        description="Build the TensorRT plans (contract and, for cached models, step) into one "
                    "self-describing .engine file. Run it on the device: plans are specific to the GPU "
                    "and TensorRT version.")
    p.add_argument("--model", required=True, metavar="M.onnx", help="fp32 model from edge-track export (required)")
    p.add_argument("--output", "-o", required=True, metavar="M.engine", help="the engine file to write (required)")
    p.add_argument("--no-fp16", action="store_true", help="keep FP32 (default: FP16 enabled)")
    p.add_argument("--workspace-mb", type=positive_int, default=1024, help="builder workspace in MB (default 1024)")
    p.add_argument("--timing-cache", metavar="PATH",
                   help="read/write the builder's timing cache here (default: none kept)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edge.engines.tensorrt_build import build_engine

    report = build_engine(args.model, args.output, fp16=not args.no_fp16, workspace_mb=args.workspace_mb,
                          timing_cache=args.timing_cache)
    sizes = ", ".join(f"{role} {size / 1e6:.1f} MB" for role, size in report.plans.items())
    print(f"wrote {report.path} ({sizes}; {'FP16' if report.fp16 else 'FP32'})")
    return 0
