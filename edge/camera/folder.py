"""A folder of images, read in name order (the OTB/LaSOT/GOT-10k layout)."""

from __future__ import annotations

import logging
import os
import time

import cv2

from edge.camera.base import Frame
from edge.errors import SourceError, SourceGone

log = logging.getLogger("edge.camera")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str) -> list[str]:
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


def read_rgb(path: str):
    """(H, W, 3) uint8 RGB, or SourceError naming the file."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
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
                image = read_rgb(path)
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
