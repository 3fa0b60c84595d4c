"""Checking, before anything runs, that a file the device will write (track log, recording) can be
written: a typo or a read-only folder is a one-line config error, not a traceback mid-start."""

from __future__ import annotations

import os


def check_writable_file(path: str) -> None:
    """ValueError (one line) unless a file can be written at ``path``: it is not a folder, an
    existing file is writable, and otherwise the nearest existing folder above it (missing folders
    are created at start) is a folder this process may write in."""
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a file")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ValueError(f"{path} is not writable")
        return
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"cannot create {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create {path}: {parent} is not writable")


def check_regular_file(path: str) -> None:
    """ValueError (one line) when something other than a regular file stands at ``path``: opening a
    FIFO blocks until a reader comes, a device (``/dev/zero``) never ends. A missing path is fine
    (the file is created at start)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):   # a folder has its own message
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) \
            else "a socket" if stat.S_ISSOCK(mode) else "not a file"
        raise ValueError(f"{path} is {kind}, not a regular file")


def read_regular_file(path: str, limit: int, what: str = "file") -> bytes:
    """The bytes at ``path``, checked before they are read: a regular file (a FIFO would block the
    reader, a link to /dev/zero never end) of at most ``limit`` bytes. OSError (one line) otherwise."""
    import errno
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"{path} is {_size(info.st_size)}: more than a {what} ({_size(limit)} at most)")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"{path} grew past {_size(limit)} while it was read")
    return data


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB" if n >= 2**10 else f"{n} bytes"

