"""Reading and writing edge-track ONNX files: metadata, the step-graph sibling, atomic saves."""

from __future__ import annotations

import os
import tempfile

import onnx

from edge.engines.model_meta import METADATA_KEY, ModelMeta, step_path_for  # noqa: F401 (re-export)
from edge.errors import ModelError


def load_with_meta(path: str) -> tuple[onnx.ModelProto, ModelMeta]:
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    try:
        proto = onnx.load(path)
    except Exception as exc:
        raise ModelError(
            f"cannot load model {path}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from None
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"{path} has no edge-track metadata; export it with 'edge-track export'")
    return proto, ModelMeta.from_json(props[METADATA_KEY], source=path)


def set_meta(proto: onnx.ModelProto, meta: ModelMeta) -> onnx.ModelProto:
    onnx.helper.set_model_props(proto, {METADATA_KEY: meta.to_json()})
    return proto


def save_together(files: dict[str, onnx.ModelProto], verify=None) -> None:
    """Write every (path -> model) beside its target first, run ``verify(tmp_paths)``, then rename.

    A failed export or check never leaves a half-written model pair behind.
    """
    tmp_paths = {}
    try:
        for path, proto in files.items():
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".part.onnx", dir=directory)
            os.close(fd)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model is an ordinary file
            tmp_paths[path] = tmp
            onnx.save(proto, tmp)
        if verify is not None:
            verify(tmp_paths)
        for path, tmp in tmp_paths.items():
            os.replace(tmp, path)
    finally:
        for tmp in tmp_paths.values():
            if os.path.exists(tmp):
                os.remove(tmp)
