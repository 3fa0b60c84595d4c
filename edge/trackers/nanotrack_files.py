"""Which files in a folder are NanoTrack's (standard library only: the config schema checks a
``model.path`` folder with it, before anything heavy is imported)."""

from __future__ import annotations

import glob
import os

from edge.errors import ConfigError

PARTS = ("backbone", "head")


def _matches(folder: str, part: str) -> list[str]:
    # A folder name may hold glob's own characters ("nt[v3]").
    return sorted(glob.glob(os.path.join(glob.escape(folder), f"*{part}*.onnx")))


def find_files(folder: str) -> tuple[str, str]:
    """(backbone, head) ONNX files in ``folder``: one ``*backbone*.onnx`` and one ``*head*.onnx``."""
    if not os.path.isdir(folder):
        raise ConfigError(f"NanoTrack folder not found: {folder}")
    found = []
    for part in PARTS:
        matches = _matches(folder, part)
        if len(matches) != 1:
            what = "no" if not matches else f"{len(matches)}"
            raise ConfigError(f"NanoTrack folder {folder}: {what} *{part}*.onnx file (needs exactly one)")
        found.append(matches[0])
    return found[0], found[1]


def is_nanotrack_folder(path: str) -> bool:
    return os.path.isdir(path) and all(_matches(path, part) for part in PARTS)
