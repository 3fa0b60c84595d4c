"""Where the loop's results go besides the tracker: the track log, the recording, the outputs, the
live view's publisher and the desk window, opened as one list (``open_sinks``) into the start-up's
ExitStack, so a start refused after them closes each again, last first, and removes the files it
created.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field

from edge.config import DeviceConfig
from edge.io.video_out import VideoOut
from edge.outputs import open_outputs
from edge.runtime.telemetry import TrackLog
from edge.trackers.overlay import draw

log = logging.getLogger("edge.runtime")


@dataclass
class Sinks:
    """What ``open_sinks`` opened (None: not configured); the loop takes them as they are."""

    track_log: TrackLog | None = None
    recorder: object = None      # record(image, result), with close()
    outputs: list = field(default_factory=list)
    publisher: object = None     # the web console's frames
    viewer: object = None        # show(image, result), with close(): a desk window

    def loop_args(self) -> dict:
        return {"track_log": self.track_log, "recorder": self.recorder, "outputs": self.outputs,
                "publisher": self.publisher, "viewer": self.viewer}


def quietly(close) -> None:
    """``close()``; one that fails must not keep the others from closing."""
    try:
        close()
    except Exception:
        pass


def open_sinks(cfg: DeviceConfig, size: tuple[int, int], *, show: bool, stop: threading.Event, checkpoint,
               stack: contextlib.ExitStack) -> Sinks:
    """Every sink ``cfg`` asks for, each closed by ``stack`` if the start goes no further. The files
    first, then the outputs: nothing after them can refuse the start, so a head is only ever opened
    by a start that goes on. ``checkpoint()`` between them: a stop signal ends the start."""
    tel, sinks = cfg.telemetry, Sinks()
    if tel.track_log:
        _created_file(tel.track_log, stack)
        sinks.track_log = TrackLog(tel.track_log, int(tel.track_log_max_mb * 2**20), tel.track_log_keep)
        stack.callback(quietly, sinks.track_log.close)
    if tel.record:
        _created_file(tel.record, stack)
        sinks.recorder = build_recorder(tel.record, cfg.camera.fps, size)
        stack.callback(quietly, sinks.recorder.close)
    if cfg.web.enabled:
        from edge.web.publisher import FramePublisher

        sinks.publisher = FramePublisher(cfg.web.max_fps, cfg.web.jpeg_quality, cfg.web.max_width)
        stack.callback(quietly, sinks.publisher.close)
    sinks.viewer = build_viewer(stop) if show else None
    if sinks.viewer is not None:
        stack.callback(quietly, sinks.viewer.close)
    checkpoint()
    sinks.outputs = open_outputs(cfg.outputs, cfg.control)   # last: opening one may move its head (servos centre)
    for out in sinks.outputs:
        stack.callback(quietly, out.close)
    checkpoint()
    return sinks


def _created_file(path: str, stack: contextlib.ExitStack) -> None:
    """Start-up is about to create ``path``: if a later step fails, remove it again (a refused
    start leaves no empty track log nor a recording with no frames)."""
    if not os.path.exists(path):
        stack.callback(quietly, lambda: os.path.exists(path) and os.remove(path))


def build_recorder(path: str, fps: float, size: tuple[int, int]):
    """``record(image_rgb, result)`` writing annotated frames to ``path`` (None when ``path`` is
    empty), with ``record.close()``. The file is opened here at the configured ``size`` (width,
    height), so a path OpenCV cannot write is a one-line SourceError at start, not a recording
    that silently holds nothing; it is reopened once if the first frame has another size."""
    if not path:
        return None
    import cv2

    state = {"video": VideoOut(path, fps, size), "size": tuple(size), "frames": 0}

    def record(image, result) -> None:
        frame = draw(image, result)
        got = frame.shape[1::-1]
        if got != state["size"]:
            if state["frames"] == 0:
                state["video"].close()
                state["video"], state["size"] = VideoOut(path, fps, got), got
            else:
                frame = cv2.resize(frame, state["size"])
        state["video"].write(frame)
        state["frames"] += 1

    record.close = lambda: state["video"].close()
    return record


def build_viewer(stop: threading.Event):
    """A live window when there is a display and an OpenCV with a GUI; None (headless) otherwise."""
    import cv2

    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        log.info("no display: running headless")
        return None
    try:
        cv2.namedWindow("edge-track", cv2.WINDOW_NORMAL)
    except cv2.error:
        log.info("this OpenCV has no GUI (opencv-python-headless): running headless")
        return None
    def show(image, result) -> None:
        cv2.imshow("edge-track", draw(image, result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            stop.set()

    show.close = cv2.destroyAllWindows
    return show
