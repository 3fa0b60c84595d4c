"""The real VOT toolkit (``vot-toolkit`` from PyPI, in a venv of its own: it installs
opencv-python, which would replace the contrib cv2 the peer trackers use) runs ``edge-track
trax`` on a local stack built from the bundled sample clip (and a dev sequence when ../shared is
there), with no network: ``vot evaluate`` writes results, and the average overlap ``vot analysis``
reports is the one ``edge-track eval``'s boxes give on the same frames.

The toolkit's venv: $EDGE_TRACK_VOT, default /tmp/edge-track-vot (.ci/run creates it with
``python3 -m venv /tmp/edge-track-vot && /tmp/edge-track-vot/bin/pip install vot-toolkit==0.9.0
attributee==0.1.9``); the test skips when it is not there.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SEQUENCES
from edge.sample import BUNDLED_MODEL, SAMPLE_DIR

VOT_VENV = os.environ.get("EDGE_TRACK_VOT", "/tmp/edge-track-vot")
VOT = os.path.join(VOT_VENV, "bin", "vot")
DEV_SEQUENCE = "wakeboard7"   # the shortest dev sequence: 67 frames

pytestmark = [
    pytest.mark.skipif(not os.path.isfile(VOT), reason=f"needs the VOT toolkit's venv at {VOT_VENV} "
                       "(set EDGE_TRACK_VOT; .ci/run creates it)"),
    pytest.mark.skipif(not os.path.isfile(BUNDLED_MODEL), reason="needs the bundled model (edge/data/model/)"),
]

STACK = """\
title: edge-track local stack (no download)
experiments:
  baseline:
    type: unsupervised
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 1
"""


def toolkit_env():
    """The toolkit's command line asks GitHub for a newer version before every command (a 5 s
    timeout per try, longer where DNS hangs): a proxy on a closed local port makes that fail at
    once, and the toolkit carries on. Text results, so the test can read them without the toolkit."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy")}
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", VOT_RESULTS_BINARY="0")
    return env


def write_workspace(root, sequences):
    """A VOT workspace with a local stack: sequences/<name>/color/%08d.jpg linked to the frames,
    groundtruth.txt as x,y,w,h, and trackers.ini naming ``edge-track trax`` from this checkout."""
    from edge.evaluation.datasets import find_sequences

    os.makedirs(os.path.join(root, "sequences"))
    names = []
    for folder in sequences:
        (seq,) = find_sequences(folder)
        target = os.path.join(root, "sequences", seq.name)
        os.makedirs(os.path.join(target, "color"))
        for i, frame in enumerate(seq.frames):
            os.symlink(os.path.abspath(frame), os.path.join(target, "color", f"{i + 1:08d}.jpg"))
        np.savetxt(os.path.join(target, "groundtruth.txt"), seq.gt, fmt="%.4f", delimiter=",")
        with open(os.path.join(target, "sequence"), "w") as f:
            f.write("channels.color=color/%08d.jpg\nfps=30\n")
        names.append(seq.name)
    with open(os.path.join(root, "sequences", "list.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(root, "stack.yaml"), "w") as f:
        f.write(STACK)
    with open(os.path.join(root, "config.yaml"), "w") as f:
        f.write("stack: ./stack.yaml\nregistry:\n  - ./trackers.ini\n")
    with open(os.path.join(root, "trackers.ini"), "w") as f:
        f.write(f"[edge-track]\nlabel = edge-track\nprotocol = trax\n"
                f"command = {sys.executable} -m edge.cli.main trax\nenv_PYTHONPATH = {REPO}\n")
    return names


def vot(*args, cwd):
    proc = subprocess.run([VOT, *args], cwd=cwd, env=toolkit_env(), capture_output=True, text=True, timeout=600)
    # The toolkit logs an error and still exits 0: its words are what tell.
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


# The toolkit's own overlap (whole pixels inside the image), run in its venv on boxes from a file.
TOOLKIT_OVERLAPS = """
import sys, numpy as np
from vot.region import Rectangle, calculate_overlaps
pred, gt = (np.loadtxt(p, delimiter=",", ndmin=2) for p in sys.argv[1:3])
bounds = (int(sys.argv[3]), int(sys.argv[4]))
print(float(np.mean(calculate_overlaps([Rectangle(*b) for b in pred], [Rectangle(*b) for b in gt], bounds))))
"""


def toolkit_overlap(pred, gt, width, height, tmp_path):
    """The toolkit's mean overlap of ``pred`` against ``gt`` (x,y,w,h rows) in a width x height image."""
    np.savetxt(tmp_path / "pred.txt", pred, delimiter=",")
    np.savetxt(tmp_path / "gt.txt", gt, delimiter=",")
    proc = subprocess.run([os.path.join(VOT_VENV, "bin", "python"), "-c", TOOLKIT_OVERLAPS, str(tmp_path / "pred.txt"),
                           str(tmp_path / "gt.txt"), str(width), str(height)], capture_output=True, text=True,
                          timeout=300, env=toolkit_env())
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.split()[-1])


def test_the_vot_toolkit_evaluates_edge_track_trax_and_reports_the_overlap_eval_gives(tmp_path):
    import cv2

    from edge.evaluation.datasets import find_sequences
    from edge.evaluation.metrics import iou

    folders = [SAMPLE_DIR]
    if os.path.isdir(os.path.join(SEQUENCES, DEV_SEQUENCE)):
        folders.append(os.path.join(SEQUENCES, DEV_SEQUENCE))
    ws = str(tmp_path / "workspace")
    names = write_workspace(ws, folders)

    out = vot("evaluate", "--workspace", ws, "edge-track", cwd=ws)
    assert "Evaluation concluded" in out and "error" not in out.lower(), out
    out = vot("analysis", "--workspace", ws, "--format", "json", "--name", "edge", "edge-track", cwd=ws)
    assert "Analysis successful" in out, out
    with open(os.path.join(ws, "analysis", "edge.json")) as f:
        report = json.load(f)
    vot_overlap = report["results"]["baseline"]["results"][0][0][0]

    # edge-track eval on the same frames, its boxes saved
    saved = tmp_path / "eval"
    for folder in folders:
        proc = subprocess.run([sys.executable, "-m", "edge.cli.main", "eval", "--sequences", folder,
                               "--save-results", str(saved)], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
        assert proc.returncode == 0, proc.stderr
    pixels, exact, lengths = [], [], []
    for folder, name in zip(folders, names):
        (seq,) = find_sequences(folder)
        height, width = cv2.imread(seq.frames[0]).shape[:2]
        ours = np.loadtxt(saved / f"{name}.txt", delimiter=",")
        # the toolkit's trajectory: the same boxes, up to the text form TraX carries
        theirs = [line.strip() for line in open(os.path.join(ws, "results", "edge-track", "baseline", name,
                                                             f"{name}_001.txt"))]
        assert len(theirs) == len(seq) and theirs[0] == "1"          # 1: the initialisation frame
        theirs = np.array([[float(v) for v in line.split(",")] for line in theirs[1:]])
        np.testing.assert_allclose(theirs, ours[1:], atol=1e-2)
        # burnin 1: the initialisation frame is left out
        pixels.append(toolkit_overlap(ours[1:], seq.gt[1:], width, height, tmp_path))
        exact.append(iou(ours[1:], seq.gt[1:]).mean())
        lengths.append(len(seq))
    weights = np.array(lengths) / sum(lengths)                        # the toolkit weighs sequences by length
    ours_pixels, ours_iou = float(np.dot(weights, pixels)), float(np.dot(weights, exact))
    print(f"vot analysis: average overlap {vot_overlap:.4f}; edge-track eval's boxes: {ours_pixels:.4f} in whole "
          f"pixels, {ours_iou:.4f} as exact IoU")
    # The boxes differ only by TraX's text form (< 1e-3 px): a box edge that close to a pixel
    # boundary may fall the other way, moving one frame's overlap by one pixel row's share.
    assert vot_overlap == pytest.approx(ours_pixels, abs=1e-3), (vot_overlap, ours_pixels, ours_iou)
