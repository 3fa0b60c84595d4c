"""Video files made from generated frames (a textured square moving over noise)."""

import cv2

from conftest import make_clip_frames


def write_video(path, n=60, size=(320, 240), fourcc="MJPG"):
    """``n`` frames at 30 fps; returns the ground-truth boxes."""
    frames, gt = make_clip_frames(n, size=size)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 30, size)
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return gt
