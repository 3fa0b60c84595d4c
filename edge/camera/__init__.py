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


def open_source(spec: str | int) -> FrameSource:
    """A frame source for a camera index, a video file/URL or an image folder."""
    text = str(spec).strip()
    if text.isdigit():
        return OpenCVSource(int(text))
    if os.path.isdir(text):
        return ImageFolderSource(text)
    if "://" in text or os.path.isfile(text):
        return OpenCVSource(text)
    raise SourceError(f"no such video, image folder or camera: {text}")


__all__ = ["Frame", "FrameSource", "ImageFolderSource", "OpenCVSource", "open_source"]
