"""What the loop reports: a JSONL track log, an optional annotated recording, a status line, and
log lines that journald files under the right priority (``<N>`` syslog prefixes on stderr)."""

from __future__ import annotations

import json
import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class SyslogPrefixFormatter(logging.Formatter):
    """``<6>message``: journald reads the prefix as the priority (SyslogLevelPrefix=yes)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {record.getMessage()}"


def setup_logging(level: int = logging.INFO, stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    under_journal = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    handler.setFormatter(SyslogPrefixFormatter() if under_journal else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("edge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class TrackLog:
    """One JSON object per processed frame, flushed line by line so nothing is lost on a crash.

    Rotated by size (``path`` -> ``path.1`` -> ... -> ``path.<keep>``, the oldest dropped), so a
    device running for weeks never fills its card.
    """

    def __init__(self, path: str, max_bytes: int = 50 * 2**20, keep: int = 3) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.path, self.max_bytes, self.keep = path, int(max_bytes), int(keep)
        self._file = open(path, "a", encoding="utf-8", buffering=1)
        self.lines = 0
        self.rotations = 0

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.lines += 1
        if self._file.tell() >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.keep, 0, -1):
            older = f"{self.path}.{i}"
            newer = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(newer):
                os.replace(newer, older)
        if self.keep == 0:
            os.remove(self.path)
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)
        self.rotations += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
