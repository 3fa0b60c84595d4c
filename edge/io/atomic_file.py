"""Files written for a user (calibration, gimbal profile, exported models, the console's token) are
written whole or not at all: a temporary file beside the target, fsync, rename. A write that fails
(a full disk, ``ulimit -f``, a kill between open and close) leaves the old file as it was and no
temporary file behind. Standard library only."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from typing import Iterator

PART_SUFFIX = ".part"


def _umask() -> int:
    # /proc gives it without changing it (os.umask sets it, for every thread at once, to read it).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _mode_for(path: str, mode: int | None) -> int:
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(os.stat(path).st_mode)   # an existing file keeps its mode
    except OSError:
        return 0o666 & ~_umask()                      # a new one gets what open() would give it


def _fsync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_paths(paths, *, mode: int | None = None) -> Iterator[dict[str, str]]:
    """``with atomic_paths([a, b]) as tmp:`` write each file at ``tmp[a]``...; when the block ends
    without an error every file is synced and renamed over its target (in order); otherwise every
    temporary file is removed and the targets are untouched. ``mode``: the files' permissions
    (default: an existing target's, else 0666 less the umask)."""
    tmp_paths: dict[str, str] = {}
    try:
        for path in paths:
            folder = os.path.dirname(os.path.abspath(path))
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=PART_SUFFIX, dir=folder)
            tmp_paths[path] = tmp
            try:
                os.fchmod(fd, _mode_for(path, mode))
            finally:
                os.close(fd)
        yield tmp_paths
        for tmp in tmp_paths.values():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for path, tmp in tmp_paths.items():
            os.replace(tmp, path)
        for folder in {os.path.dirname(os.path.abspath(p)) for p in tmp_paths}:
            _fsync_folder(folder)
    finally:
        for tmp in tmp_paths.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)   # gone after the rename; left only by a failure


def write_atomic(path: str, data: bytes | str, *, mode: int | None = None) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all (see ``atomic_paths``)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_paths([path], mode=mode) as tmp:
        with open(tmp[path], "wb") as f:
            f.write(raw)
