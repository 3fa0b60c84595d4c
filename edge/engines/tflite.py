"""TFLite / LiteRT engine: ``ai-edge-litert`` (preferred) or the older ``tflite-runtime``.

An edge-track .tflite file holds two signatures, ``full`` (template, online_template, search ->
box, score, template K/V) and ``step`` (search, template K/V -> box, score), and the edge-track
metadata as a TFLite metadata entry. The ``full`` signature runs on template updates only.
"""

from __future__ import annotations

import os

import numpy as np

from edge.engines.base import EngineOutput
from edge.engines.model_meta import KV_NAME, METADATA_KEY, ModelMeta
from edge.engines.tflite_metadata import read_metadata
from edge.errors import ModelError


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError("the tflite engine needs ai-edge-litert: pip install 'edge-track[tflite]'") from None
    return Interpreter


def _outputs(result: dict) -> list[np.ndarray]:
    """Signature outputs in declaration order (the converter names them output_0, output_1, ...)."""
    return [result[k] for k in sorted(result, key=lambda k: int(k.rsplit("_", 1)[-1]) if k[-1].isdigit() else k)]


class TFLiteEngine:
    def __init__(self, path: str, *, threads: int | None = None, **_ignored) -> None:
        if not os.path.isfile(path):
            raise ModelError(f"model file not found: {path}")
        with open(path, "rb") as f:
            data = f.read()
        try:
            entries = read_metadata(data)
        except Exception:
            raise ModelError(f"cannot load model {path}: not a TFLite flatbuffer") from None
        if METADATA_KEY not in entries:
            raise ModelError(f"{path} has no edge-track metadata; export it with 'edge-track export --format tflite'")
        try:
            text = entries[METADATA_KEY].decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{path}: metadata '{METADATA_KEY}' is not UTF-8 text") from None
        self.meta = ModelMeta.from_json(text, source=path)
        Interpreter = _interpreter_class()
        try:
            self._interpreter = Interpreter(model_content=data, num_threads=threads or None)
            signatures = self._interpreter.get_signature_list()
            self._full = self._interpreter.get_signature_runner("full")
            self._step = self._interpreter.get_signature_runner("step")
        except Exception as exc:
            raise ModelError(f"cannot load model {path}: {str(exc).strip().splitlines()[0]}") from None
        if set(signatures["full"]["inputs"]) != {"template", "online_template", "search"}:
            raise ModelError(f"{path}: signature 'full' has inputs {signatures['full']['inputs']}")
        self.path = path
        self.name = f"tflite-{self.meta.precision}-cached"
        self._kv = None
        self._blank_search = np.zeros((1, 3, self.meta.search_size, self.meta.search_size), np.float32)

    def set_templates(self, template: np.ndarray, online_template: np.ndarray) -> None:
        outputs = _outputs(self._full(template=template, online_template=online_template, search=self._blank_search))
        self._kv = outputs[2]

    def run(self, search: np.ndarray) -> EngineOutput:
        if self._kv is None:
            raise RuntimeError("set_templates() must be called before run()")
        boxes, scores = _outputs(self._step(**{"search": search, KV_NAME: self._kv}))
        return EngineOutput(np.asarray(boxes, np.float32).reshape(-1, 4)[0], float(np.asarray(scores).reshape(-1)[0]))

    def close(self) -> None:
        self._interpreter = self._full = self._step = None
