"""A folder of images, read in name order (the OTB/LaSOT/GOT-10k layout)."""

from __future__ import annotations

import logging
import os
import stat
import time

import cv2
import numpy as np

from edge.camera.base import Frame
from edge.errors import SourceError, SourceGone

log = logging.getLogger("edge.camera")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str) -> list[str]:
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


MAX_IMAGE_BYTES = 256 * 2**20   # a frame file larger than this is not read (a runaway file, a device)


def read_image_bytes(path: str) -> bytes:
    """The bytes of an image file, or SourceError naming it. Only a regular file is read: a FIFO
    among the frames would block the reader forever, ``/dev/zero`` never ends."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SourceError(f"cannot read image {path} ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"cannot read image {path}: not a regular file")
        if info.st_size > MAX_IMAGE_BYTES:
            raise SourceError(f"cannot read image {path}: {info.st_size / 2**20:.0f} MB, more than any frame")
        try:
            return f.read(MAX_IMAGE_BYTES + 1)
        except OSError as exc:
            raise SourceError(f"cannot read image {path} ({exc.strerror or exc})") from None


def truncated_jpeg(path: str, data: bytes) -> bool:
    """A JPEG without its end marker: cut short while it was being written or copied. libjpeg
    would decode it with grey at the bottom and print its own "Premature end of JPEG file" line."""
    if not path.lower().endswith((".jpg", ".jpeg")) or not data.startswith(b"\xff\xd8"):
        return False
    return b"\xff\xd9" not in data[-1024:]


def read_rgb(path: str, *, whole_only: bool = False):
    """(H, W, 3) uint8 RGB, or SourceError naming the file; ``whole_only``: a truncated JPEG is an
    error too (the device's folder source skips it), not decoded half grey."""
    data = read_image_bytes(path)
    if whole_only and truncated_jpeg(path, data):
        raise SourceError(f"cannot read image {path}: a truncated JPEG (no end marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise SourceError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageFolderSource:
    color_order = "RGB"

    def __init__(self, folder: str) -> None:
        if not os.path.isdir(folder):
            raise SourceError(f"no such image folder: {folder}")
        frames = os.path.join(folder, "img")
        if not list_images(folder) and os.path.isdir(frames):
            folder = frames   # an annotated sequence (OTB layout): its frames are in img/
        self.paths = list_images(folder)
        if not self.paths:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {folder}")
        self.name = folder
        self.skipped = 0   # unreadable images passed over

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self):
        for index, path in enumerate(self.paths):
            try:
                image = read_rgb(path, whole_only=True)
            except SourceError as exc:
                if not os.path.isdir(self.name):   # unmounted, deleted: say so, not "cannot read"
                    raise SourceGone(f"image folder {self.name} is gone") from None
                # One bad file is not an outage: reopening would replay the folder from frame 0
                # and hit the same file again. Skip it and go on.
                self.skipped += 1
                log.warning("%s; skipped", exc)
                continue
            yield Frame(image=image, t_capture_ns=time.monotonic_ns(), index=index)

    def close(self) -> None:
        pass
