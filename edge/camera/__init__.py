"""Frame sources: where frames come from, with capture timestamps and a stated colour order.

``open_source(spec)`` accepts a camera index ("0"), a video file, or a folder of images (sorted
by name). Every source yields ``Frame`` objects whose ``image`` is (H, W, 3) uint8 **RGB**.
"""

from __future__ import annotations

import os

from edge.camera.base import Frame, FrameSource
from edge.camera.folder import ImageFolderSource
from edge.camera.opencv import OpenCVSource
from edge.errors import SourceError


def open_source(spec: str | int, *, width: int = 0, height: int = 0, fps: float = 0.0) -> FrameSource:
    """A frame source for a camera index or /dev/video path, a video file or URL, an image
    folder, a GStreamer pipeline (contains "!"; needs an OpenCV built with GStreamer, e.g.
    JetPack's), or "picamera2"."""
    text = str(spec).strip()
    if text == "picamera2":
        from edge.camera.picamera import PiCamera2Source

        return PiCamera2Source(width or 640, height or 480, fps or 30.0)
    if "!" in text:
        return OpenCVSource(text, api="gstreamer")
    if text.isdigit():
        return OpenCVSource(int(text), width=width, height=height, fps=fps)
    if text.startswith("/dev/video"):
        return OpenCVSource(text, width=width, height=height, fps=fps)
    if os.path.isdir(text):
        return ImageFolderSource(text)
    if "://" in text or os.path.isfile(text):
        return OpenCVSource(text)
    raise SourceError(f"no such video, image folder or camera: {text}")


__all__ = ["Frame", "FrameSource", "ImageFolderSource", "OpenCVSource", "open_source"]
