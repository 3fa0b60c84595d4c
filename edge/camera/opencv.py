"""OpenCV capture: camera index, video file or stream URL. Converts BGR to RGB."""

from __future__ import annotations

import os
import sys
import time

import cv2

from edge.camera.base import Frame
from edge.errors import SourceError, SourceGone


def quiet_opencv_log() -> None:
    """OpenCV's own log at error level from now on, for this process: its capture backends print
    a WARN line for each one they try on a camera that is not there, and the caller already says
    in one line that it could not be opened."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    # FFmpeg logs on its own ("moov atom not found" for a truncated file), read when a capture opens.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


# What to try next, said with a camera that did not open: which cameras there are, or a file.
CAMERA_HINT = "see the cameras with `ls /dev/video*`, or give a video file or image folder path"


def _not_opened(spec) -> str:
    """Why a source did not open, naming what was tried (a camera index is a /dev/video node on
    Linux) and, for a camera, what to try instead."""
    if isinstance(spec, int):
        node = f"/dev/video{spec}"
        if sys.platform.startswith("linux") and not os.path.exists(node):
            return f"cannot open camera {spec} (no {node}): {CAMERA_HINT}"
        return f"cannot open camera {spec} (busy, or not a capture device?): {CAMERA_HINT}"
    if str(spec).startswith("/dev/video"):
        what = "no such device" if not os.path.exists(str(spec)) else "busy, or not a capture device?"
        return f"cannot open camera {spec} ({what}): {CAMERA_HINT}"
    return f"cannot open video source {spec}"


class OpenCVSource:
    color_order = "RGB"

    def __init__(self, spec: str | int, *, api: str = "", width: int = 0, height: int = 0, fps: float = 0.0) -> None:
        self.name = str(spec)
        quiet_opencv_log()   # what fails is said in one line below; the service retries a camera without the noise
        if api == "gstreamer":
            if "GStreamer:                   YES" not in cv2.getBuildInformation():
                raise SourceError("this OpenCV has no GStreamer support (pip's has none): on Jetson use "
                                  "JetPack's python3-opencv in a venv made with --system-site-packages")
            self._cap = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER)
        else:
            self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(_not_opened(spec))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                self._cap.set(prop, value)
        if isinstance(spec, int) or str(spec).startswith("/dev/video"):
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # live cameras: keep the driver queue short
        # Read one frame now: a file OpenCV "opens" but cannot decode fails here, not mid-run.
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"cannot read frames from {spec}")
        self._first = first
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._length = count if count > 0 and not isinstance(spec, int) else None

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("a live source has no length")
        return self._length

    def __iter__(self):
        index = 0
        bgr, self._first = self._first, None
        while True:
            if bgr is None:
                ok, bgr = self._cap.read()
                if not ok or bgr is None:
                    if self.name.startswith("/dev/") and not os.path.exists(self.name):
                        raise SourceGone(f"camera {self.name} is gone")   # unplugged: an outage
                    return
            t_ns = time.monotonic_ns()
            yield Frame(image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t_capture_ns=t_ns, index=index)
            index += 1
            bgr = None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
