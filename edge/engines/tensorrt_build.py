"""Build a TensorRT engine file from an edge-track ONNX model, on the device that will run it.

TensorRT plans are specific to the GPU and TensorRT version, so this runs on the Jetson
(``edge-track build-trt``), needs no torch, and keeps a timing cache so rebuilds take seconds.
The trtexec equivalent of one plan (without the edge-track header)::

    /usr/src/tensorrt/bin/trtexec --onnx=model.onnx --saveEngine=model.plan --fp16 \\
        --timingCacheFile=model.timing.cache \\
        --shapes=template:1x3x112x112,online_template:1x3x112x112,search:1x3x224x224
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edge.engines.model_meta import step_path_for
from edge.engines.onnx import open_session, read_meta
from edge.engines.tensorrt import Backend, write_engine_file
from edge.errors import ConfigError, ModelError


@dataclass(frozen=True)
class BuildReport:
    path: str
    plans: dict[str, int]          # role -> plan bytes
    fp16: bool
    timing_cache: str | None


def _trt_backend() -> Backend:
    try:
        import tensorrt as trt
    except ImportError:
        raise ModelError("building a TensorRT engine needs TensorRT (on Jetson: JetPack's "
                         "python3-libnvinfer, in a venv made with --system-site-packages)") from None
    return Backend(trt=trt, cuda=None)


def _major(trt) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        return 0


def build_plan(trt, onnx_bytes: bytes, *, fp16: bool, workspace_mb: int, cache_bytes: bytes | None):
    """One serialized plan, plus the updated timing cache bytes."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 has only explicit batch and rejects the old flag.
    flags = 0 if _major(trt) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ModelError(f"TensorRT cannot parse the ONNX graph: {errors[0] if errors else 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16:
        if not getattr(builder, "platform_has_fast_fp16", True):
            raise ConfigError("this GPU has no fast FP16; build without --fp16")
        config.set_flag(trt.BuilderFlag.FP16)
    cache = config.create_timing_cache(cache_bytes or b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if tuple(network.get_input(i).shape)[:1] == (-1,)]
    if dynamic:  # a --dynamic-batch export: tracking runs batch 1
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            fixed = (1, *tuple(tensor.shape)[1:])
            profile.set_shape(tensor.name, fixed, fixed, fixed)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError("TensorRT failed to build the engine (see the TensorRT log above)")
    return bytes(plan), bytes(config.get_timing_cache().serialize())


def build_engine(onnx_path: str, output: str, *, fp16: bool = True, workspace_mb: int = 1024,
                 timing_cache: str | None = None, backend: Backend | None = None) -> BuildReport:
    """Build the contract plan and, for cached models, the step plan into one .engine file."""
    session = open_session(onnx_path)
    meta = read_meta(session, onnx_path)
    del session
    if meta.precision != "fp32":
        raise ConfigError(f"{onnx_path} is {meta.precision}; build TensorRT engines from the fp32 model "
                          f"(TensorRT picks precisions itself with --fp16)")
    trt = (backend or _trt_backend()).trt
    sources = {"contract": onnx_path}
    if meta.graph == "cached":
        step = step_path_for(onnx_path)
        if not os.path.isfile(step):
            raise ModelError(f"{onnx_path} needs its step graph {step}, which is missing")
        sources["step"] = step
    cache_bytes = None
    if timing_cache and os.path.isfile(timing_cache):
        with open(timing_cache, "rb") as f:
            cache_bytes = f.read()
    plans = {}
    for role, src in sources.items():
        with open(src, "rb") as f:
            plans[role], cache_bytes = build_plan(trt, f.read(), fp16=fp16, workspace_mb=workspace_mb,
                                                  cache_bytes=cache_bytes)
    if timing_cache:
        with open(timing_cache, "wb") as f:
            f.write(cache_bytes)
    engine_meta = meta.replace(precision="fp16" if fp16 else "fp32",
                               step_file="plan:step" if "step" in plans else "")
    write_engine_file(output, engine_meta, plans)
    return BuildReport(output, {k: len(v) for k, v in plans.items()}, fp16, timing_cache)
