"""The console's token file: created once, kept across restarts, private (0600), never through a link."""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import stat

from edge.errors import ConfigError
from edge.io.atomic_file import write_atomic

log = logging.getLogger("edge.web")

TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]{32,512}")


def load_or_create_token(state_dir: str) -> str:
    """A token kept across restarts in ``state_dir/web-token`` (mode 0600).

    The path is never followed through a symbolic link: whoever can plant one would choose the
    file the token is read from or written into. A short or malformed token is replaced by a new
    file, written whole under a temporary name and renamed, so no reader sees half a token and
    the file is never, even briefly, readable by others.
    """
    path = os.path.join(state_dir, "web-token")
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        token = _read_token(path)
        if token is None:
            token = secrets.token_urlsafe(32)
            _write_private(path, token + "\n")
    except ConfigError:
        raise
    except OSError as exc:
        raise ConfigError(f"web token file {path}: {exc.strerror or exc}") from None
    return token


def check_token_file(state_dir: str) -> None:
    """ConfigError (one line) for what ``load_or_create_token`` would refuse, found without creating
    or changing anything (``config check``): a link, or something other than a file, at its path."""
    path = os.path.join(state_dir, "web-token")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"web token file {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(f"web token file {path} is a symbolic link: refusing to follow it "
                          "(remove it and a new token is written)")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"web token file {path} is not a regular file")


def _read_token(path: str) -> str | None:
    try:
        # O_NONBLOCK: a FIFO planted there must not hang the start; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"web token file {path} is a symbolic link: refusing to follow it "
                              "(remove it and a new token is written)") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ConfigError(f"web token file {path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        token = f.read(1024).decode("ascii", errors="replace").strip()
        if not TOKEN_CHARS.fullmatch(token):
            log.info("web token in %s is too short or malformed: writing a new one", path)
            return None
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    return token


def _write_private(path: str, text: str) -> None:
    # The rename replaces a link planted meanwhile, never writes through it; mode 0600 from the start.
    write_atomic(path, text, mode=0o600)


def default_state_dir() -> str:
    return os.environ.get("STATE_DIRECTORY") or os.path.join(os.path.expanduser("~"), ".local", "state", "edge-track")
