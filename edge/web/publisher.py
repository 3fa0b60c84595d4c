"""Live view frames, encoded off the tracking loop's hot path and only while someone watches.

The loop calls ``offer`` once per frame: it only stores references (no copy, no drawing, no
encoding). An encoder thread wakes at most ``max_fps`` times a second while at least one viewer is
connected, draws the box and state, downscales, and JPEG-encodes the newest frame.
"""

from __future__ import annotations

import threading
import time

import cv2

from edge.trackers.overlay import draw


class FramePublisher:
    def __init__(self, max_fps: float = 8.0, jpeg_quality: int = 70, max_width: int = 960) -> None:
        self.period = 1.0 / max_fps
        self.quality = int(jpeg_quality)
        self.max_width = int(max_width)
        self._lock = threading.Condition()
        self._pending = None                # (image, result) from the loop
        self._jpeg: bytes | None = None
        self._jpeg_id = 0
        self.viewers = 0
        self.encoded = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()

    # -- loop side (hot path: constant time) ---------------------------------------------------
    def offer(self, image, result) -> None:
        if self.viewers:
            self._pending = (image, result)

    # -- server side ---------------------------------------------------------------------------
    def add_viewer(self) -> int:
        """Count a viewer in; returns the id to pass to ``wait_frame``, so that its first frame is one
        offered after it came (not the last one made for an earlier viewer, minutes and a state ago)."""
        with self._lock:
            if not self.viewers:
                # Whatever was offered while the last viewer left is from then, not now (cleared
                # before the count goes up: the encoder takes a frame only while someone watches).
                self._pending = None
            self.viewers += 1
            self._lock.notify_all()
            return self._jpeg_id

    def remove_viewer(self) -> None:
        with self._lock:
            self.viewers = max(0, self.viewers - 1)
            if not self.viewers:
                self._jpeg = None       # nobody to send it to, and too old for whoever comes next

    def wait_frame(self, last_id: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest JPEG newer than ``last_id`` (waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._jpeg_id == last_id and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return self._jpeg_id, self._jpeg

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.viewers or self._pending is None:
                self._stop.wait(0.05)
                continue
            image, result = self._pending
            self._pending = None
            bgr = draw(image, result)
            height, width = bgr.shape[:2]
            if width > self.max_width:
                bgr = cv2.resize(bgr, (self.max_width, round(height * self.max_width / width)),
                                 interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if ok:
                with self._lock:
                    self._jpeg = buf.tobytes()
                    self._jpeg_id += 1
                    self.encoded += 1
                    self._lock.notify_all()
            self._stop.wait(self.period)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._thread.join(timeout=1.0)
