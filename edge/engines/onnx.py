"""onnxruntime engine for edge-track ONNX files (CPU by default)."""

from __future__ import annotations

import os

import numpy as np

from edge.engines.base import EngineOutput
from edge.engines.model_meta import (
    INPUT_NAMES,
    KV_NAME,
    METADATA_KEY,
    OUTPUT_NAMES,
    STEP_INPUT_NAMES,
    ModelMeta,
    step_path_for,
)
from edge.errors import ModelError


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a core dependency
        raise ModelError("onnxruntime is not installed: pip install onnxruntime") from None
    ort.set_default_logger_severity(3)  # errors only: ORT's warnings are not ours to print
    return ort


def session_options(threads: int | None = None):
    """CPU session settings for a tracker sharing the machine with camera and I/O threads."""
    ort = _import_ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads) if threads else 0
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads burn the cores the capture and serial threads need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def open_session(path: str, threads: int | None = None, providers=None):
    """An InferenceSession, with one-line errors for missing or corrupt files."""
    ort = _import_ort()
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    try:
        return ort.InferenceSession(path, sess_options=session_options(threads),
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several unrelated types for bad files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {path}: {first_line}") from None


def read_meta(session, source: str) -> ModelMeta:
    custom = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in custom:
        raise ModelError(
            f"{source} has no edge-track metadata; export it with 'edge-track export' "
            f"(the runtime needs the crop factors and sizes stored there)"
        )
    return ModelMeta.from_json(custom[METADATA_KEY], source=source)


class OnnxEngine:
    """Runs an edge-track ONNX model with onnxruntime.

    When the model carries the template cache (metadata ``graph == "cached"``), the contract
    graph runs only on template updates, to produce the templates' keys/values, and each frame
    runs the smaller step graph; otherwise every frame runs the full contract graph.

    Args:
        path: an .onnx file written by ``edge-track export`` (or ``quantize``).
        threads: intra-op threads (None: onnxruntime's default, one per physical core).
        providers: onnxruntime execution providers, CPU by default.
        use_cache: set False to force the full graph every frame (for comparisons).
    """

    def __init__(self, path: str, *, threads: int | None = None, providers=None,
                 use_cache: bool = True) -> None:
        self.path = path
        self._session = open_session(path, threads, providers)
        self.meta = read_meta(self._session, path)
        self._check_io(self._session, path, INPUT_NAMES, OUTPUT_NAMES)
        self._step = None
        if self.meta.graph == "cached" and use_cache:
            # Beside a renamed model first, then under the name it was exported with.
            step_path = step_path_for(path)
            if not os.path.isfile(step_path):
                step_path = os.path.join(os.path.dirname(os.path.abspath(path)), self.meta.step_file)
            if not os.path.isfile(step_path):
                raise ModelError(f"{path} needs its step graph {step_path_for(path)}, which is missing "
                                 f"(copy both files, or re-export)")
            self._step = open_session(step_path, threads, providers)
            if read_meta(self._step, step_path) != self.meta:
                raise ModelError(f"{step_path} does not belong to {path} (metadata differ; re-export both)")
            self._check_io(self._step, step_path, STEP_INPUT_NAMES, OUTPUT_NAMES)
            self._check_io(self._session, path, INPUT_NAMES, (KV_NAME,))
        self.name = f"onnxruntime-{self.meta.precision}-{'cached' if self._step else 'full'}"
        self._feeds: dict[str, np.ndarray] | None = None
        self._blank_search = np.zeros((1, 3, self.meta.search_size, self.meta.search_size), np.float32)

    @property
    def cached(self) -> bool:
        return self._step is not None

    def _check_io(self, session, path, inputs, outputs) -> None:
        shapes = {i.name: i.shape for i in session.get_inputs()}
        names = [o.name for o in session.get_outputs()]
        if any(n not in shapes for n in inputs) or any(n not in names for n in outputs):
            raise ModelError(
                f"{path}: graph does not follow the edge-track contract (inputs {sorted(shapes)}, "
                f"outputs {names}; expected inputs {list(inputs)} and outputs {list(outputs)})")
        expected = {"template": self.meta.template_size, "online_template": self.meta.template_size,
                    "search": self.meta.search_size}
        for name, size in expected.items():
            shape = shapes.get(name)
            if shape is not None and (len(shape) != 4 or shape[2:] != [size, size]):
                raise ModelError(f"{path}: input '{name}' has shape {shape}, metadata says {size}x{size}")

    def set_templates(self, template: np.ndarray, online_template: np.ndarray) -> None:
        if self._step is None:
            self._feeds = {"template": template, "online_template": online_template}
            return
        (kv,) = self._session.run([KV_NAME], {"template": template, "online_template": online_template,
                                              "search": self._blank_search})
        self._feeds = {KV_NAME: kv}

    def run(self, search: np.ndarray) -> EngineOutput:
        if self._feeds is None:
            raise RuntimeError("set_templates() must be called before run()")
        session = self._step or self._session
        boxes, scores = session.run(list(OUTPUT_NAMES), {**self._feeds, "search": search})
        return EngineOutput(box_cxcywh=np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[0],
                            score_logit=float(np.asarray(scores).reshape(-1)[0]))

    def close(self) -> None:
        self._session = None
        self._step = None
        self._feeds = None
