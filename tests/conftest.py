"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

import logging
import os
import signal

import cv2
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_TRACK_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
SEQUENCES = os.path.join(SHARED, "data", "sequences")
REFERENCE = os.path.join(SHARED, "reference")
NANOTRACK_DIR = os.path.join(SHARED, "models", "opencv")

# The service keeps a signal its parent set to be ignored ignored (nohup's HUP; a shell's `&`
# ignores INT and QUIT), as a daemon should. The tests send those signals to child processes on
# purpose, so the suite gives its children the default dispositions whatever started it.
for _name in ("SIGHUP", "SIGQUIT"):
    if hasattr(signal, _name) and signal.getsignal(getattr(signal, _name)) == signal.SIG_IGN:
        signal.signal(getattr(signal, _name), signal.SIG_DFL)
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def shared_path(*parts: str) -> str:
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"needs ../shared ({path} not found): CI has it beside the checkout")
    return path


def make_clip_frames(n: int = 24, size=(160, 120), box=(40, 30, 24, 20), step=(2, 1), seed: int = 0):
    """A textured square moving over a noise background: (frames RGB list, gt boxes (n, 4))."""
    rng = np.random.default_rng(seed)
    width, height = size
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (5, 5), 0)
    patch = rng.integers(0, 255, (box[3], box[2], 3), dtype=np.uint8)
    frames, boxes = [], []
    for i in range(n):
        x, y = box[0] + step[0] * i, box[1] + step[1] * i
        frame = background.copy()
        frame[y:y + box[3], x:x + box[2]] = patch
        frames.append(frame)
        boxes.append((x, y, box[2], box[3]))
    return frames, np.asarray(boxes, dtype=np.float64)


def write_sequence(folder: str, frames, boxes, gt_name: str = "groundtruth_rect.txt", sep: str = ",") -> str:
    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, "img", f"{i + 1:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    with open(os.path.join(folder, gt_name), "w") as f:
        for b in boxes:
            f.write(sep.join(f"{v:g}" for v in b) + "\n")
    return folder


def square_sequence(root, n: int) -> str:
    """A dataset folder ``root`` holding one OTB sequence, "square": a 40x32 textured square
    crossing a 320x240 frame in ``n`` frames. Returns ``root``."""
    frames, boxes = make_clip_frames(n=n, size=(320, 240), box=(120, 90, 40, 32), step=(3, 2))
    write_sequence(str(root / "square"), frames, boxes)
    return str(root)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A seeded tiny-preset model exported through the real export path."""
    pytest.importorskip("torch")
    from train.export.onnx import export_onnx
    from train.models.model import build_model
    from train.models.presets import get_preset

    path = str(tmp_path_factory.mktemp("models") / "tiny.onnx")
    export_onnx(build_model(get_preset("tiny"), seed=0), path)
    return path


@pytest.fixture(scope="session")
def s_model(tmp_path_factory):
    """(torch model, onnx path) for the S preset with seeded weights."""
    pytest.importorskip("torch")
    from train.export.onnx import export_onnx
    from train.models.model import build_model
    from train.models.presets import get_preset

    model = build_model(get_preset("S"), seed=3)
    path = str(tmp_path_factory.mktemp("models") / "s.onnx")
    report = export_onnx(model, path)
    return model, path, report


@pytest.fixture
def records():
    """Edge's log records during the test (support.logs.Records)."""
    from support.logs import Records

    handler = Records()
    logger = logging.getLogger("edge")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)
