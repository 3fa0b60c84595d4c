"""Telemetry off the loop thread: the track log and the recording are written by a thread of their
own, fed through a bounded queue. A disk that is slow, full or hung (a FIFO put at the track log's
path, a network mount that stopped answering) then costs telemetry lines, dropped and counted,
never a frame, a command, a stop or a watchdog ping."""

from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger("edge.telemetry")

_STOP = object()


class TelemetryWorker:
    """``submit(fn)`` runs ``fn()`` on the worker's thread, in order; with ``max_jobs`` waiting
    already the job is dropped (``dropped`` counts them) and ``submit`` returns False at once.
    A job that raises is reported once per worker and the next one runs."""

    def __init__(self, name: str, max_jobs: int) -> None:
        self.name = name
        self.dropped = 0
        self._jobs: queue.Queue = queue.Queue(max_jobs)
        self._behind = False      # dropping now: one warning per episode, not one per job
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=f"telemetry-{name}", daemon=True)
        self._thread.start()

    def submit(self, fn) -> bool:
        try:
            self._jobs.put_nowait(fn)
        except queue.Full:
            self.dropped += 1
            if not self._behind:
                self._behind = True
                log.warning("%s is behind (a slow, full or hung disk?): dropping what it cannot take; "
                            "tracking goes on", self.name)
            return False
        if self._behind and self._jobs.qsize() <= 1:
            self._behind = False
            log.info("%s caught up (%d dropped so far)", self.name, self.dropped)
        return True

    def _run(self) -> None:
        while True:
            fn = self._jobs.get()
            if fn is _STOP:
                return
            try:
                fn()
            except Exception as exc:
                if not self._failed:
                    self._failed = True
                    log.warning("%s failed (%s); tracking goes on", self.name, " ".join(str(exc).split()))

    def close(self, timeout: float = 2.0) -> bool:
        """Run what is queued and end the thread, waiting at most ``timeout`` s; False when the thread
        is stuck (in a write that does not return): it is left behind (a daemon thread), and what it
        writes must not be closed under it."""
        try:
            self._jobs.put(_STOP, timeout=timeout)
        except queue.Full:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()
