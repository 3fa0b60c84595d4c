"""onnxruntime engine for edge-track ONNX files (CPU by default)."""

from __future__ import annotations

import os

import numpy as np

from edge.engines.base import EngineOutput
from edge.errors import ModelError
from edge.model_meta import INPUT_NAMES, METADATA_KEY, OUTPUT_NAMES, ModelMeta


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
    """Runs the full three-input graph of the contract with onnxruntime.

    Args:
        path: an .onnx file written by ``edge-track export``.
        threads: intra-op threads (None: onnxruntime's default, one per physical core).
        providers: onnxruntime execution providers, CPU by default.
    """

    name = "onnxruntime"

    def __init__(self, path: str, *, threads: int | None = None, providers=None) -> None:
        self.path = path
        self._session = open_session(path, threads, providers)
        self.meta = read_meta(self._session, path)
        self._check_contract()
        self._templates: dict[str, np.ndarray] | None = None

    def _check_contract(self) -> None:
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        missing = [n for n in INPUT_NAMES if n not in inputs]
        if missing or any(n not in outputs for n in OUTPUT_NAMES):
            raise ModelError(
                f"{self.path}: graph does not follow the edge-track contract "
                f"(inputs {sorted(inputs)}, outputs {outputs}; expected inputs {list(INPUT_NAMES)} "
                f"and outputs {list(OUTPUT_NAMES)})"
            )
        expected = {"template": self.meta.template_size, "online_template": self.meta.template_size,
                    "search": self.meta.search_size}
        for name, size in expected.items():
            shape = inputs[name]
            if len(shape) != 4 or shape[2:] != [size, size]:
                raise ModelError(f"{self.path}: input '{name}' has shape {shape}, "
                                 f"metadata says {size}x{size}")

    def set_templates(self, template: np.ndarray, online_template: np.ndarray) -> None:
        self._templates = {"template": template, "online_template": online_template}

    def run(self, search: np.ndarray) -> EngineOutput:
        if self._templates is None:
            raise RuntimeError("set_templates() must be called before run()")
        boxes, scores = self._session.run(list(OUTPUT_NAMES), {**self._templates, "search": search})
        return EngineOutput(box_cxcywh=np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[0],
                            score_logit=float(np.asarray(scores).reshape(-1)[0]))

    def close(self) -> None:
        self._session = None
        self._templates = None
