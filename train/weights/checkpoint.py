"""Read MixFormerV2 checkpoints (the official ``.pth.tar`` files and bare state dicts), and write ours.

The released files are training checkpoints: the weights sit under ``'net'`` beside pickled
objects of the official code base (settings, constructor, stats). We never import that code
and never run a pickle's code: loading goes through torch's weights-only unpickler, and every
foreign class or function the file names is replaced by an inert placeholder that keeps
nothing. Only tensors and plain containers come out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zipfile
from typing import TYPE_CHECKING

import torch

from edge.errors import CheckpointError
from train.models.model import MixFormerV2, build_model
from train.models.presets import PRESETS, Architecture, get_preset

if TYPE_CHECKING:
    from train.config import TrainConfig

# Where training frameworks put the weights inside a checkpoint dict, in the order tried.
_WEIGHT_KEYS = ("net", "state_dict", "model")


class _Inert:
    """Stands in for any foreign object in a checkpoint: accepts its state and discards it."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unpickling_reason(exc: BaseException) -> str:
    """The informative line of torch's multi-paragraph unpickling errors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line:
            return f"refused to unpickle it ({line.rstrip('.')}; it could run code)"
    return lines[0] if lines else type(exc).__name__


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The weights in ``path`` as a flat {name: tensor} dict (``module.`` prefixes removed)."""
    return _read(path)[0]


def _read(path: str):
    """(state dict, the model_config an edge-track training checkpoint records, or None)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (torch.save zip format expected)")
    try:
        foreign = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        with torch.serialization.safe_globals([(_Inert, name) for name in foreign]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {unpickling_reason(exc)}") from None
    state = _find_state_dict(obj)
    if state is None:
        keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path} holds no model weights (found: {keys})")
    model_config = obj.get("model_config") if isinstance(obj, dict) else None
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return upgrade_keys(state), model_config if isinstance(model_config, dict) else None


def upgrade_keys(state: dict) -> dict:
    """Weights named as earlier versions of this code named them, renamed to today's: the first
    readout students (2026-12-07) had one readout layer (``readout.q``), not a list (``readout.0.q``)."""
    return {f"readout.0.{k[len('readout.'):]}" if re.match(r"readout\.[a-z]", k) else k: v for k, v in state.items()}


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _find_state_dict(obj):
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        for key in _WEIGHT_KEYS:
            if _is_state_dict(obj.get(key)):
                return obj[key]
    return None


def infer_config(state: dict[str, torch.Tensor]) -> Architecture | None:
    """The preset whose shapes the weights have, or None."""
    for cfg in PRESETS.values():
        expected = MixFormerV2_shapes(cfg)
        if set(expected) == set(state) and all(tuple(state[k].shape) == v for k, v in expected.items()):
            return cfg
    return None


_SHAPES_CACHE: dict[str, dict[str, tuple[int, ...]]] = {}


def MixFormerV2_shapes(cfg: Architecture) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a preset, without allocating its weights."""
    if cfg.name not in _SHAPES_CACHE:
        with torch.device("meta"):
            model = MixFormerV2(cfg)
        _SHAPES_CACHE[cfg.name] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return _SHAPES_CACHE[cfg.name]


def check_state_dict(state: dict[str, torch.Tensor], cfg: Architecture, source: str) -> None:
    """Raise CheckpointError naming the first mismatch, and the preset that fits if one does."""
    expected = MixFormerV2_shapes(cfg)
    problem = None
    for key, shape in expected.items():
        if key not in state:
            problem = f"missing key '{key}'"
            break
        if tuple(state[key].shape) != shape:
            problem = (f"shape mismatch for '{key}': checkpoint {list(state[key].shape)}, "
                       f"variant {cfg.name} expects {list(shape)}")
            break
    if problem is None:
        extra = [k for k in state if k not in expected]
        if extra:
            problem = f"unexpected key '{extra[0]}'"
    if problem is None:
        return
    fitting = infer_config(state)
    hint = (f"; these weights fit variant {fitting.name} ({fitting.describe()}): use --variant {fitting.name}"
            if fitting is not None and fitting.name != cfg.name else "")
    raise CheckpointError(f"{source} does not fit variant {cfg.name}: {problem}{hint}")


def load_model(path: str, variant: str | None = None) -> tuple[MixFormerV2, str]:
    """Build the model for ``path``'s weights and load them strictly.

    variant: a preset name; None picks the preset the shapes fit.
    Returns (model in eval mode, sha256 of the file).
    """
    state, recorded = _read(path)
    if variant is None:
        cfg = infer_config(state)
        if cfg is None and recorded is not None:
            try:
                cfg = Architecture(**recorded)       # a shape made by training (e.g. fewer layers)
                check_state_dict(state, cfg, path)
            except (TypeError, CheckpointError):
                cfg = None
        if cfg is None:
            raise CheckpointError(f"{path} fits none of the variants {', '.join(PRESETS)}; "
                                  f"name one with --variant to see the first mismatch")
    else:
        cfg = get_preset(variant)
        check_state_dict(state, cfg, path)
    model = build_model(cfg)
    model.load_state_dict(state, strict=True)
    return model.eval(), file_sha256(path)


def save_checkpoint(path: str, model: MixFormerV2, epoch: int, cfg: TrainConfig,
                    optimizer=None, scheduler=None) -> None:
    """Weights under 'net' (the official layout) beside plain data only: tensors, dicts, lists,
    numbers and strings, so resuming reads it with torch's weights-only unpickler."""
    tmp = path + ".part"
    torch.save({"net": model.state_dict(), "epoch": epoch, "net_type": "mixformer2_vit_online",
                "preset": model.cfg.name, "model_config": dataclasses.asdict(model.cfg),
                "config": dataclasses.asdict(cfg),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None}, tmp)
    os.replace(tmp, path)
