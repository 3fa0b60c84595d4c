"""Video files made from generated frames (a textured square moving over noise)."""

import json

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


def device_config(tmp_path, model_path, n=60, **sections):
    """device.yaml for `run` on a generated clip of ``n`` frames played in a loop, tracking the
    square from its first box; ``sections`` are added to it. Returns its path."""
    video = str(tmp_path / "clip.avi")
    gt = write_video(video, n=n)
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": video, "loop_file": True}, "model": {"path": model_path},
                               "tracking": {"init": ",".join(f"{v:g}" for v in gt[0])}, **sections}))
    return cfg
