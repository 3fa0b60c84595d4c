"""A progress line on stderr for long runs (only when stderr is a terminal, so logs stay clean), and a
beat while one long call runs."""

from __future__ import annotations

import contextlib
import sys
import threading
import time


class Progress:
    def __init__(self, total: int | None, label: str = "", stream=None) -> None:
        self.total = total
        self.label = label
        self.count = 0
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self._enabled and (now - self._last > 0.2 or self.count == self.total):
            self._last = now
            rate = self.count / max(now - self._start, 1e-9)
            if self.total:
                eta = (self.total - self.count) / rate if rate > 0 else 0.0
                text = f"{self.label} {self.count}/{self.total} {rate:.1f} it/s ETA {eta:.0f}s"
            else:
                text = f"{self.label} {self.count} {rate:.1f} it/s"
            self._stream.write("\r" + text.ljust(70))
            self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()


@contextlib.contextmanager
def reporting_while(what: str, report, every_s: float = 5.0):
    """Call ``report(what, waited_s)`` every ``every_s`` seconds while the block runs, from a
    daemon thread: a step that blocks in one call (a model loading) still shows it is at work."""
    done = threading.Event()

    def beat() -> None:
        waited = 0.0
        while not done.wait(every_s):
            waited += every_s
            report(what, waited)

    thread = threading.Thread(target=beat, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
