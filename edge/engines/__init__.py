"""Inference engines behind one interface (``edge.engines.base.Engine``).

Engines are looked up by name; an engine whose library is missing on this device fails only
when asked for, with a one-line error, so a Pi without pycuda still starts on onnxruntime.
"""

from __future__ import annotations

from edge.engines.base import Engine, EngineOutput
from edge.errors import ConfigError


def _onnxruntime(path, **kwargs):
    from edge.engines.onnx import OnnxEngine

    return OnnxEngine(path, **kwargs)


def _onnxruntime_cuda(path, **kwargs):
    from edge.engines.onnx import OnnxEngine

    return OnnxEngine(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], **kwargs)


def _tflite(path, **kwargs):
    from edge.engines.tflite import TFLiteEngine

    return TFLiteEngine(path, **kwargs)


def _tensorrt(path, **kwargs):
    from edge.engines.tensorrt import TensorRTEngine

    return TensorRTEngine(path, **kwargs)


ENGINES = {"onnxruntime": _onnxruntime, "onnxruntime-cuda": _onnxruntime_cuda,
           "tflite": _tflite, "tensorrt": _tensorrt}

# File endings that name their engine when none is given.
_BY_SUFFIX = {".tflite": "tflite", ".engine": "tensorrt", ".plan": "tensorrt"}


def engine_for(path: str) -> str:
    import os

    return _BY_SUFFIX.get(os.path.splitext(path)[1].lower(), "onnxruntime")


def open_engine(path: str, engine: str | None = None, **kwargs) -> Engine:
    """Open ``path`` with the named engine (default: by file ending, .onnx -> onnxruntime).

    kwargs go to the engine (e.g. ``threads``).
    """
    engine = engine or engine_for(path)
    try:
        factory = ENGINES[engine]
    except KeyError:
        raise ConfigError(f"unknown engine '{engine}' (valid: {', '.join(sorted(ENGINES))})") from None
    return factory(path, **kwargs)


__all__ = ["Engine", "EngineOutput", "ENGINES", "engine_for", "open_engine"]
