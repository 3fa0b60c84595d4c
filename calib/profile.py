"""The gimbal profile: one YAML that `calibrate gimbal`, `latency` and `pid` each update, and that
the runtime loads with `control.profile` (validated like the rest of the config)."""

from __future__ import annotations

import os

import yaml

from edge.config import ControlConfig, apply_profile
from edge.errors import ConfigError
from edge.io.atomic_file import atomic_paths
from edge.io.safe_yaml import read_yaml


def update_profile(path: str, values: dict, note: str) -> dict:
    data = {}
    if os.path.lexists(path):   # whatever stands there: a FIFO or a folder is refused, not replaced
        data = read_yaml(path, "gimbal profile") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is not a gimbal profile")
    data.setdefault("control", {}).update(values)
    data.setdefault("notes", {})[note] = {k: v for k, v in values.items()}
    try:
        with atomic_paths([path]) as tmp:
            with open(tmp[path], "w", encoding="utf-8") as f:
                yaml.safe_dump(data, f, sort_keys=False)
            apply_profile(ControlConfig(), tmp[path])   # never write a profile the runtime would refuse
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc} (the file there is unchanged)") from None
    return data
