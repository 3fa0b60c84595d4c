"""What the loop reports: a JSONL track log, an optional annotated recording, a status line, and
log lines that journald files under the right priority (``<N>`` syslog prefixes on stderr)."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import sys
import time

from edge.errors import ConfigError
from edge.io.paths import check_regular_file, check_writable_file

log = logging.getLogger("edge.telemetry")
CHECK_PATH_S = 1.0   # how often the track log looks whether its file was rotated or deleted away

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class SyslogPrefixFormatter(logging.Formatter):
    """``<6>message``: journald reads the prefix as the priority (SyslogLevelPrefix=yes)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {record.getMessage()}"


def setup_logging(level: int = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    under_journal = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    handler.setFormatter(SyslogPrefixFormatter() if under_journal
                         else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("edge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


# Kernel pseudo file systems: a path there may pass the permission checks, yet no file can be made.
_PSEUDO_FS = ("/proc", "/sys")


def check_track_log_path(path: str) -> None:
    """ConfigError (one line) unless TrackLog can create or append to ``path``; creates nothing."""
    try:
        if path.endswith(("/", os.sep)):
            raise ValueError("ends with '/': that names a folder, not a file")
        real = os.path.realpath(path)
        for top in _PSEUDO_FS:
            if real == top or real.startswith(top + "/"):
                raise ValueError(f"{top} is a kernel file system, not a place for files")
        check_writable_file(path)
        check_regular_file(path)
    except ValueError as exc:
        raise ConfigError(f"telemetry.track_log {path}: {exc}") from None


def status_line(st, no_frame_s: float) -> str:
    """The status line (log and systemd STATUS) of the loop's stats ``st``: its state and rates, or
    how long no frame came, and each part's counters."""
    health = "; ".join(f"{name} " + " ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items())
                       for name, c in st.counters.items())
    if st.outage:
        return f"NO SIGNAL for {no_frame_s:.1f} s ({st.state}, gimbal stopped) fps {st.fps:.1f}; {health}"
    return (f"{st.state} fps {st.fps:.1f} score {st.score:.2f} frame age {st.frame_age_ms:.0f} ms "
            f"latency {st.latency_ms:.0f} ms; {health}")


class TrackLog:
    """One JSON object per processed frame, written line by line so nothing is lost on a crash.

    Rotated by size (``path`` -> ``path.1`` -> ... -> ``path.<keep>``, the oldest dropped), so a
    device running for weeks never fills its card. Telemetry never stops tracking: when the disk is
    full (or the file goes away) it warns once, drops lines (counted in ``dropped``) and tries again
    every ``retry_s`` seconds; a line that only partly reached the disk is cut off again, so the
    file only ever holds whole lines. A file deleted or moved away under it (``rm``, logrotate) is
    noticed within CHECK_PATH_S (its inode is no longer the one at ``path``): the lines after that go
    to a new file at ``path``, with one warning, not to a deleted inode.
    """

    # One stat of ``path`` a second, not one per frame. The cost: the lines of that second still go
    # to the old inode, which after logrotate's rename is the rotated file (nothing lost), after an
    # ``rm`` a deleted file (up to a second of lines lost, as the rm asked for).
    def __init__(self, path: str, max_bytes: int = 50 * 2**20, keep: int = 3, *, retry_s: float = 30.0,
                 clock=time.monotonic, opener=None) -> None:
        self.path, self.max_bytes, self.keep = path, int(max_bytes), int(keep)
        self.retry_s = float(retry_s)
        self._clock = clock
        self._opener = opener or _open_append
        self.lines = 0
        self.rotations = 0
        self.dropped = 0
        self._failed_at: float | None = None
        self._file = None
        self._identity: tuple[int, int] | None = None
        self._path_checked_at = 0.0
        check_track_log_path(path)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if os.path.isdir(path):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            self._open()
        except OSError as exc:
            raise ConfigError(f"telemetry.track_log {path}: cannot write there ({exc.strerror or exc})") from None

    def _open(self) -> None:
        self._file = self._opener(self.path)
        self._size = self._file.seek(0, os.SEEK_END)
        st = os.fstat(self._file.fileno())
        self._identity = (st.st_dev, st.st_ino)
        self._path_checked_at = self._clock()

    def _path_check_due(self) -> bool:
        now = self._clock()
        if now - self._path_checked_at < CHECK_PATH_S:
            return False
        self._path_checked_at = now
        return True

    def _moved_away(self) -> bool:
        """True when ``path`` no longer names the open file (deleted, or renamed and replaced)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False   # cannot tell (a flaky mount): the write itself says whether it works
        return (st.st_dev, st.st_ino) != self._identity

    def write(self, record: dict) -> None:
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        if self._failed_at is not None and self._clock() - self._failed_at < self.retry_s:
            self.dropped += 1
            return
        try:
            if self._file is not None and self._path_check_due() and self._moved_away():
                log.warning("track log %s was deleted or moved away (log rotation?): writing to a new file there",
                            self.path)
                self._close_file()
            if self._file is None:
                self._open()
            self._write_whole(data)
        except OSError as exc:
            self._failed(exc)
            self.dropped += 1
            return
        if self._failed_at is not None:
            self._failed_at = None
            log.info("track log: writing again to %s (%d lines were dropped)", self.path, self.dropped)
        self.lines += 1
        if self._size >= self.max_bytes:
            try:
                self._rotate()
            except OSError as exc:
                self._failed(exc)

    def _write_whole(self, data: bytes) -> None:
        # The size now, not the one counted: logrotate's copytruncate empties the file under us, and
        # cutting back to a stale, larger size would fill the gap with NUL bytes.
        start = os.fstat(self._file.fileno()).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[self._file.write(view) or 0:]
        except OSError:
            try:   # take back the part of the line that did land
                if os.fstat(self._file.fileno()).st_size > start:
                    self._file.truncate(start)
            except OSError:
                pass
            raise
        self._size = start + len(data)

    def _failed(self, exc: OSError) -> None:
        if self._failed_at is None:   # once per outage, not once per dropped line
            log.warning("track log %s: %s; tracking goes on without it (retrying every %g s)",
                        self.path, exc.strerror or exc, self.retry_s)
        self._failed_at = self._clock()

    def _rotate(self) -> None:
        self._close_file()
        for i in range(self.keep, 0, -1):
            older = f"{self.path}.{i}"
            newer = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(newer):
                os.replace(newer, older)
        if self.keep == 0:
            os.remove(self.path)
        self.rotations += 1
        self._open()

    def _close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass

    def close(self) -> None:
        self._close_file()


_NOT_REGULAR = "not a regular file (a FIFO or a device was put there)"


def _open_append(path: str):
    """Unbuffered bytes: each line is one write(2), so what reached the disk is known exactly.
    Only a regular file: O_NONBLOCK makes a FIFO put at the path (``rm``, ``mkfifo``) fail at once
    (ENXIO without a reader) instead of blocking, and one with a reader is refused after the open."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:   # what a FIFO without a reader answers
            raise OSError(errno.EINVAL, _NOT_REGULAR) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, _NOT_REGULAR)
        return os.fdopen(fd, "ab", buffering=0)
    except BaseException:
        os.close(fd)
        raise
