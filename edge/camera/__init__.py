"""Frame sources: where frames come from, with capture timestamps and a stated colour order.

``open_source(spec)`` accepts a camera index ("0"), a video file, or a folder of images (sorted
by name). Every source yields ``Frame`` objects whose ``image`` is (H, W, 3) uint8 **RGB**.

``SOURCES`` is the one table of source kinds: ``open_source``, ``is_live`` and the config's
``camera.source`` check all read it; the first kind whose ``matches`` accepts the text wins.
Adding a kind is its module plus one line here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from edge.camera.base import Frame, FrameSource
from edge.camera.folder import ImageFolderSource
from edge.camera.opencv import OpenCVSource
from edge.errors import SourceError


@dataclass(frozen=True)
class SourceKind:
    """One kind of frame source: ``matches(text)`` says whether a ``camera.source`` text is one,
    ``open(text, width, height, fps)`` opens it (0: the device's own setting), ``live`` says
    whether it is a camera (retried until it appears) rather than a file that simply ends."""

    name: str
    matches: Callable[[str], bool]
    open: Callable[[str, int, int, float], FrameSource]
    live: bool


def _picamera2(text, width, height, fps):
    from edge.camera.picamera import PiCamera2Source

    return PiCamera2Source(width or 640, height or 480, fps or 30.0)


SOURCES: tuple[SourceKind, ...] = (
    SourceKind("Raspberry Pi camera", lambda t: t == "picamera2", _picamera2, live=True),
    # needs an OpenCV built with GStreamer, e.g. JetPack's
    SourceKind("GStreamer pipeline", lambda t: "!" in t,
               lambda t, w, h, fps: OpenCVSource(t, api="gstreamer"), live=True),
    SourceKind("camera index", str.isdigit,
               lambda t, w, h, fps: OpenCVSource(int(t), width=w, height=h, fps=fps), live=True),
    SourceKind("V4L2 device", lambda t: t.startswith("/dev/video"),
               lambda t, w, h, fps: OpenCVSource(t, width=w, height=h, fps=fps), live=True),
    SourceKind("image folder", os.path.isdir, lambda t, w, h, fps: ImageFolderSource(t), live=False),
    SourceKind("network stream", lambda t: "://" in t, lambda t, w, h, fps: OpenCVSource(t), live=True),
    SourceKind("video file", os.path.isfile, lambda t, w, h, fps: OpenCVSource(t), live=False),
)


def source_kind(spec: str | int) -> SourceKind:
    """The kind of source ``spec`` names; SourceError when it names none (e.g. a missing file)."""
    text = str(spec).strip()
    for kind in SOURCES:
        if kind.matches(text):
            return kind
    raise SourceError(f"no such video, image folder or camera: {text}")


def is_live(spec: str | int) -> bool:
    """Cameras (index, /dev/video*, picamera2, GStreamer pipelines, network streams) vs files and
    folders; False for a spec that names nothing."""
    try:
        return source_kind(spec).live
    except SourceError:
        return False


def open_source(spec: str | int, *, width: int = 0, height: int = 0, fps: float = 0.0) -> FrameSource:
    """A frame source for a camera index or /dev/video path, a video file or URL, an image
    folder, a GStreamer pipeline (contains "!"), or "picamera2"; ``width``/``height``/``fps``
    are requested from cameras (0: the device's default)."""
    text = str(spec).strip()
    return source_kind(text).open(text, width, height, fps)


__all__ = ["Frame", "FrameSource", "ImageFolderSource", "OpenCVSource", "SOURCES", "SourceKind", "is_live",
           "open_source", "source_kind"]
