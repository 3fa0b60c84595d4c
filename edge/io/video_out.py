"""Writing an annotated video file (``track --out``, ``telemetry.record``)."""

from __future__ import annotations

import os

from edge.errors import SourceError
from edge.io.paths import check_regular_file, check_writable_file

# Containers OpenCV's FFmpeg writer opens with the codecs chosen below (MJPG in .avi, mp4v else).
SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".m4v")


def check_video_path(path: str) -> None:
    """ValueError (one line) unless ``path`` names a video file VideoOut can write."""
    if os.path.splitext(path)[1].lower() not in SUFFIXES:
        raise ValueError(f"{path}: a video needs one of the endings {', '.join(SUFFIXES)}")
    check_writable_file(path)
    check_regular_file(path)


class VideoOut:
    """A video file at ``path`` (.avi: MJPG, the other SUFFIXES: mp4v) of ``size`` (width, height)
    BGR frames at ``fps``. Raises SourceError, naming the path, when it cannot be written."""

    def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
        import cv2

        try:
            check_video_path(path)   # before OpenCV, which prints its own assertion for an unknown ending
        except ValueError as exc:
            raise SourceError(f"cannot write video: {exc}") from None
        # check_video_path (like `config check`) accepts a missing folder as one to create at start.
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot write video {path}: cannot create {folder} ({exc.strerror})") from None
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.lower().endswith(".avi") else "mp4v"))
        self._writer = cv2.VideoWriter(path, fourcc, fps, size)
        if not self._writer.isOpened():
            raise SourceError(f"cannot write video {path} (try an .avi or .mp4 name in a writable folder)")

    def write(self, image_bgr) -> None:
        self._writer.write(image_bgr)

    def close(self) -> None:
        self._writer.release()
