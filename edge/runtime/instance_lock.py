"""One edge-track per device: a second ``run`` on the same serial port, MAVLink link, pins, I2C
board or camera is refused before it opens anything, so it never sends a single byte (a stop, a
release, a control timeout) to a head the first one is driving.

Each device the config would open is an advisory ``flock`` on a small file in ``EDGE_TRACK_LOCK_DIR``
(default ``/run/lock``, the system's place for device locks, else the temporary folder), held
until the process ends; the kernel drops it when the process dies, SIGKILL included, so a crash
never leaves a stale lock. The file holds the holder's pid, for the message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import tempfile

from edge.errors import ConfigError

SERIAL_TYPES = ("serial_box", "serial_nmea", "simplebgc", "pelco_d")


def _device(path: str) -> str:
    return os.path.realpath(path) if path.startswith("/") else path


def device_keys(cfg) -> list[tuple[str, str]]:
    """(key, what it is in the config) for every device the config's ``run`` would open."""
    from edge.camera import is_live

    keys = []
    for i, out in enumerate(cfg.outputs):
        if not out.enabled:
            continue
        where = f"outputs[{i}] ({out.type})"
        if out.type in SERIAL_TYPES:
            keys.append((f"serial:{_device(out.port)}", where))
        elif out.type == "mavlink":
            port = out.port
            keys.append((f"serial:{_device(port)}" if port.startswith("/") else f"mavlink:{port}", where))
        elif out.type == "pwm" and out.pin_factory != "mock":   # mock pins are no device
            keys += [(f"gpio:{out.pan_pin}", where), (f"gpio:{out.tilt_pin}", where)]
        elif out.type == "pca9685":
            keys.append((f"i2c:{out.i2c_bus}:{out.i2c_address}", where))
    source = str(cfg.camera.source).strip()
    if is_live(source) and "://" not in source and "!" not in source:   # a device, not a stream anyone may read
        keys.append((f"camera:{_device('/dev/video' + source if source.isdigit() else source)}", "camera.source"))
    return list(dict.fromkeys(keys))


def lock_dir() -> str:
    chosen = os.environ.get("EDGE_TRACK_LOCK_DIR")
    if chosen:
        return chosen
    return "/run/lock" if os.access("/run/lock", os.W_OK | os.X_OK) else tempfile.gettempdir()


def _lock_path(folder: str, key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[-60:]
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    return os.path.join(folder, f"edge-track.{readable}.{digest}.lock")


def _open_lock(path: str) -> int:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.EACCES:   # another user's lock file: read-only is enough for flock
            raise
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    fd = os.open(path, flags | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)   # any user's edge-track can take it when this one is gone
    return fd


class DeviceLocks:
    """The locks held for one run; ``release()`` (idempotent) lets them go."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds

    def release(self) -> None:
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def hold_device_locks(cfg, folder: str | None = None) -> DeviceLocks:
    """Lock every device ``cfg`` would open; ConfigError (one line) naming the first one another
    process holds. Nothing is held when it raises."""
    folder = folder or lock_dir()
    fds: list[int] = []
    try:
        for key, where in device_keys(cfg):
            path = _lock_path(folder, key)
            try:
                fd = _open_lock(path)
            except OSError as exc:
                raise ConfigError(f"{where}: cannot make the lock file {path} ({exc.strerror or exc})") from None
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                raise ConfigError(f"{where}: {key.split(':', 1)[1]} is in use by another edge-track"
                                  f"{f' (pid {holder})' if holder else ''}: stop it first; nothing was sent") from None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        DeviceLocks(fds).release()
        raise
    return DeviceLocks(fds)


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode("ascii").strip()))
    return ""
