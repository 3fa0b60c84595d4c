"""Write NanoTrack pseudo-tracks of an unlabelled video as OTB-style sequences (img/ + boxes).

For choosing tracker settings without touching the evaluation sequences: label a video that is
neither trained on nor evaluated on, then ``edge-track eval --sequences OUT``. The labels are
NanoTrack's own boxes (cut where its confidence drops), so scores measure agreement with it.

    python -m train.data.pseudo_sequences VIDEO OUT [--nanotrack-dir DIR] [--min-frames N] [--seed S]
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

from train.data.feature_pool import pseudo_tracks


def write_pseudo_sequences(video: str, out: str, model_dir: str, min_frames: int = 40, seed: int = 0,
                           limit: int = 12) -> list[str]:
    rng = np.random.default_rng(seed)
    frames, tracks = pseudo_tracks(video, model_dir, rng, track_len=150, people=False)
    tracks = sorted((t for t in tracks if len(t[1]) >= min_frames), key=lambda t: -len(t[1]))
    # Keep tracks that start apart, so the set is not one target many times.
    chosen, starts = [], []
    for start, boxes in tracks:
        if all(abs(start - s) >= 30 for s in starts):
            chosen.append((start, boxes))
            starts.append(start)
        if len(chosen) == limit:
            break
    written = []
    stem = os.path.splitext(os.path.basename(video))[0]
    for k, (start, boxes) in enumerate(chosen):
        folder = os.path.join(out, f"{stem}-{k:02d}")
        os.makedirs(os.path.join(folder, "img"), exist_ok=True)
        for i in range(len(boxes)):
            cv2.imwrite(os.path.join(folder, "img", f"{i + 1:04d}.jpg"), frames[start + i])
        np.savetxt(os.path.join(folder, "groundtruth_rect.txt"), boxes, fmt="%.2f", delimiter=",")
        written.append(folder)
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("out")
    p.add_argument("--nanotrack-dir", default=os.path.join("..", "shared", "models", "opencv"))
    p.add_argument("--min-frames", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    written = write_pseudo_sequences(args.video, args.out, args.nanotrack_dir, args.min_frames, args.seed)
    print(f"wrote {len(written)} sequences to {args.out}")
    return 0 if written else 1


if __name__ == "__main__":
    raise SystemExit(main())
