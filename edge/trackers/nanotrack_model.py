"""NanoTrack's two networks (backbone and head) from its ONNX files, checked as they load: what
version they are (by feature width) and whether they fit each other and the tracking loop."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edge.engines.onnx_dims import OnnxFormatError, free_spatial_dims
from edge.errors import ConfigError, first_line
from edge.trackers.nanotrack_files import find_files


@dataclass(frozen=True)
class NanoTrackSettings:
    """The TRACK section of an upstream config."""

    version: str
    window_influence: float
    penalty_k: float
    lr: float
    context_amount: float = 0.5
    exemplar_size: int = 127
    instance_size: int = 255
    stride: int = 16


SETTINGS = {
    48: NanoTrackSettings("v2", window_influence=0.490, penalty_k=0.150, lr=0.385),   # configv2.yaml
    96: NanoTrackSettings("v3", window_influence=0.455, penalty_k=0.138, lr=0.348),   # configv3.yaml
}


class NanoTrackModel:
    """The two networks: ``features(crop)`` and ``head(template_features, search_features)``."""

    name = "onnxruntime"

    def __init__(self, folder: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        from edge.engines.onnx import session_options

        backbone_path, head_path = find_files(folder)
        options = session_options(threads)    # the runtime's own: no spinning threads
        options.log_severity_level = 4        # its errors are ours to say, in one line (no coloured log line)
        quiet_onnxruntime(ort)
        try:
            # Type and size first: a FIFO would block the read, /dev/zero never end, 200 MB of
            # zeros take a minute to parse.
            backbone_bytes, head = read_model_file(backbone_path), read_model_file(head_path)
            # Which files these are: the confidence fitted for upstream's files applies to them alone.
            self.files_sha256 = (hashlib.sha256(backbone_bytes).hexdigest(), hashlib.sha256(head).hexdigest())
            backbone = free_spatial_dims(backbone_bytes)
            self._backbone = ort.InferenceSession(backbone, options, providers=["CPUExecutionProvider"])
            self._head = ort.InferenceSession(head, options, providers=["CPUExecutionProvider"])
        except (OnnxFormatError, OSError) as exc:
            raise ConfigError(f"NanoTrack files in {folder} cannot be read: {first_line(exc)}") from None
        except ConfigError:
            raise
        except Exception as exc:   # onnxruntime's own errors are many lines; MemoryError has none
            raise ConfigError(f"NanoTrack files in {folder} are not valid ONNX: {first_line(exc)}") from None
        self._backbone_input = self._backbone.get_inputs()[0].name
        heads = self._head.get_inputs()
        if len(heads) != 2 or len(heads[0].shape) != 4 or len(self._head.get_outputs()) != 2:
            raise ConfigError(f"{head_path}: not a NanoTrack head (two feature inputs, score and box outputs)")
        self._head_inputs = [i.name for i in heads]
        channels = heads[0].shape[1]
        if channels not in SETTINGS:
            raise ConfigError(f"{head_path}: {channels}-channel features; NanoTrack V2 has 48, V3 96")
        self.settings = SETTINGS[channels]
        try:
            template = self.features(np.zeros((1, 3, self.settings.exemplar_size, self.settings.exemplar_size),
                                              np.float32))
            made = template.shape
        except Exception as exc:
            raise ConfigError(f"{backbone_path}: not a NanoTrack backbone: {first_line(exc)}") from None
        if len(made) != 4 or made[1] != channels:
            raise ConfigError(f"{backbone_path} gives {made[1] if len(made) == 4 else '?'}-channel features and "
                              f"{head_path} takes {channels}: the two files are from different versions")
        # The head's outputs, as the tracker reads them, on what the backbone gives for a search crop.
        try:
            size = self.settings.instance_size
            search = self.features(np.zeros((1, 3, size, size), np.float32))
            cls, loc = self.head(template, search)
        except Exception as exc:
            raise ConfigError(f"{head_path}: not a NanoTrack head for {backbone_path}: {first_line(exc)}") from None
        check_head_outputs(head_path, np.shape(cls), np.shape(loc), np.shape(search))

    def features(self, crop: np.ndarray) -> np.ndarray:
        return self._backbone.run(None, {self._backbone_input: crop})[0]

    def head(self, template_features: np.ndarray, search_features: np.ndarray):
        cls, loc = self._head.run(None, dict(zip(self._head_inputs, (template_features, search_features))))
        return cls, loc

    def close(self) -> None:
        self._backbone = self._head = None


MAX_MODEL_BYTES = 64 * 2**20   # NanoTrack's files are 1-2 MB: far larger is not one of them


def read_model_file(path: str, limit: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a model file, checked before they are read: a regular file (a FIFO would block,
    a link to /dev/zero never end), at most ``limit`` bytes, and starting as an ONNX model does (its
    first field, the IR version: 200 MB of zeros are refused at once, not parsed for a minute).
    OSError (one line) otherwise."""
    import errno

    from edge.io.paths import read_regular_file

    data = read_regular_file(path, limit, "NanoTrack file")
    if not data.startswith(b"\x08"):   # ModelProto field 1 (ir_version), a varint: what every exporter writes first
        raise OSError(errno.EINVAL, f"{path} is not an ONNX file")
    return data


def check_head_outputs(head_path: str, cls_shape, loc_shape, search_shape) -> None:
    """ConfigError (one line) unless the head gives what the tracker decodes: a 2-channel score
    map and a 4-channel box map on the same square grid, no larger than the search features."""
    grid = tuple(cls_shape[2:]) if len(cls_shape) == 4 else None
    problem = None
    if len(cls_shape) != 4 or len(loc_shape) != 4 or cls_shape[0] != 1 or loc_shape[0] != 1:
        problem = f"outputs of shapes {tuple(cls_shape)} and {tuple(loc_shape)}, expected (1, 2, N, N) and (1, 4, N, N)"
    elif cls_shape[1] == 4 and loc_shape[1] == 2:
        problem = "its outputs are swapped (box map first, score map second)"
    elif cls_shape[1] != 2:
        problem = f"a {cls_shape[1]}-channel score map (NanoTrack's has 2: background, target)"
    elif loc_shape[1] != 4:
        problem = f"a {loc_shape[1]}-channel box map (NanoTrack's has 4: left, top, right, bottom)"
    elif grid[0] != grid[1] or tuple(loc_shape[2:]) != grid:
        problem = f"a {grid[0]}x{grid[1]} score grid and a {loc_shape[2]}x{loc_shape[3]} box grid (one square grid)"
    elif len(search_shape) == 4 and grid[0] > search_shape[-1]:
        problem = (f"a {grid[0]}x{grid[1]} grid for {search_shape[-2]}x{search_shape[-1]} search features "
                   "(at most their size)")
    if problem:
        raise ConfigError(f"{head_path}: not a NanoTrack head: {problem}")


def quiet_onnxruntime(ort) -> None:
    """onnxruntime's process-wide log at FATAL only: a file it refuses is one line of ours, without
    its own coloured error line before it."""
    try:
        ort.set_default_logger_severity(4)
    except Exception:
        pass
