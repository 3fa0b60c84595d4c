"""A thread that keeps only the newest frame: the tracker never works on a stale buffer.

Frames the tracker did not take in time are dropped and counted. When the source ends or fails
(a camera unplugged, an RTSP stream gone) it is reopened with exponential backoff; a finite file
source simply finishes, also when it fails mid-stream, unless it raised SourceGone (its folder or
device vanished), which is an outage to wait out. ``get()`` returns each frame at most once.
"""

from __future__ import annotations

import logging
import threading
import time

from edge.camera.base import Frame
from edge.errors import SourceError, SourceGone
from edge.io.backoff import Backoff

log = logging.getLogger("edge.camera")


class LatestFrameGrabber:
    def __init__(self, open_source, *, reconnect_initial_s: float = 0.5, reconnect_max_s: float = 10.0,
                 reconnect: bool = True, pace_fps: float | None = None, replay: bool = False,
                 clock_ns=time.monotonic_ns, wait=threading.Event.wait) -> None:
        """pace_fps: deliver at most this many frames per second (files and folders read at
        disk speed; pacing makes them behave like the camera they stand in for). replay: a finite
        source that ends is started again at once (a demo clip looped), not as an outage.
        clock_ns and wait(stop_event, seconds) -> stopped: the time the pacing and the backoff go
        by (a test gives a fake one to check them without waiting)."""
        self._open = open_source
        self._clock_ns, self._wait = clock_ns, wait
        self._period = 1.0 / pace_fps if pace_fps else 0.0
        self._backoff = Backoff(reconnect_initial_s, reconnect_max_s)
        self._reconnect = reconnect
        self._replay = replay
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken_index = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter = 0
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.skipped = 0   # unreadable frames the source passed over (an image folder's bad files)
        self.connected = False
        self.finished = False
        self.last_error = ""
        self.failure = ""   # why a source that should have gone on ended (a looped file that no longer opens)

    def start(self) -> "LatestFrameGrabber":
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        first = True
        failed = False   # a source that vanished (SourceGone) is reopened even without reconnect
        reported = ""    # the open error already logged: a camera that stays away is one line, not one per retry
        while not self._stop.is_set():
            try:
                source = self._open()
            except SourceError as exc:
                self.last_error = str(exc)
                if not (self._reconnect or failed):
                    if self._replay and self.frames:   # looped, then gone: an end nobody asked for
                        self.failure = str(exc)
                        log.error("camera source ended unexpectedly: %s", exc)
                    break
                wait = self._backoff.failed()
                if str(exc) != reported:
                    log.warning("camera unavailable (%s); retrying in %.1f s", exc, wait)
                    reported = str(exc)
                else:
                    log.debug("camera still unavailable; retrying in %.1f s", wait)
                self._wait(self._stop, wait)
                continue
            reported = ""
            if not first:
                self.reconnects += 1
                log.info("camera reconnected")
            first = failed = False
            self.connected = True
            self._backoff.succeeded()
            next_due = self._clock_ns() / 1e9
            frames_before = self.frames   # a pass with no frame is not replayed at once (no spin)
            try:
                for frame in source:
                    if self._stop.is_set():
                        break
                    t_capture = frame.t_capture_ns
                    if self._period:
                        next_due += self._period
                        if self._wait(self._stop, max(0.0, next_due - self._clock_ns() / 1e9)):
                            break
                        t_capture = self._clock_ns()   # a paced file is "captured" when released
                    with self._cond:
                        if self._latest is not None and self._latest.index != self._taken_index:
                            self.dropped += 1
                        # Re-index: a reopened source restarts at 0, consumers need a running count.
                        self._latest = Frame(frame.image, t_capture, self._counter)
                        self._counter += 1
                        self.frames += 1
                        self._cond.notify_all()
            except Exception as exc:  # a driver error mid-stream: treat as a disconnect
                # Only a vanished source is an outage for a finite one; any other error would
                # recur on reopen and replay the file from frame 0 forever.
                failed = isinstance(exc, SourceGone)
                self.last_error = str(exc)
                log.warning("camera read failed: %s", exc)
            finally:
                self.connected = False
                self.skipped += int(getattr(source, "skipped", 0))
                try:
                    source.close()
                except Exception:
                    pass
            if not (self._reconnect or self._replay or failed) or self._stop.is_set():
                break
            if self._replay and not failed and self.frames > frames_before:
                log.debug("source ended; replaying it from the start")
                first = True   # not a reconnect: no warning, no backoff, not counted
                continue
            wait = self._backoff.failed()
            log.warning("camera stream ended; reopening in %.1f s", wait)
            self._wait(self._stop, wait)
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not returned before, waiting up to ``timeout`` s; None if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.index == self._taken_index:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.finished:
                    return None
                self._cond.wait(remaining)
            self._taken_index = self._latest.index
            return self._latest

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
