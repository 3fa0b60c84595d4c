"""Writing an annotated video file (``track --out``, ``telemetry.record``)."""

from __future__ import annotations

import cv2

from edge.errors import SourceError


class VideoOut:
    """A video file at ``path`` (.avi: MJPG, anything else: mp4v) of ``size`` (width, height) BGR
    frames at ``fps``. Raises SourceError, naming the path, when OpenCV cannot open it for writing."""

    def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.lower().endswith(".avi") else "mp4v"))
        self._writer = cv2.VideoWriter(path, fourcc, fps, size)
        if not self._writer.isOpened():
            raise SourceError(f"cannot write video {path} (try an .avi or .mp4 name in a writable folder)")

    def write(self, image_bgr) -> None:
        self._writer.write(image_bgr)

    def close(self) -> None:
        self._writer.release()
