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


ENGINES = {"onnxruntime": _onnxruntime}


def open_engine(path: str, engine: str = "onnxruntime", **kwargs) -> Engine:
    """Open ``path`` with the named engine; kwargs go to the engine (e.g. ``threads``)."""
    try:
        factory = ENGINES[engine]
    except KeyError:
        raise ConfigError(f"unknown engine '{engine}' (valid: {', '.join(sorted(ENGINES))})") from None
    return factory(path, **kwargs)


__all__ = ["Engine", "EngineOutput", "ENGINES", "open_engine"]
