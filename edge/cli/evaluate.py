"""``edge-track eval``: score a tracker (ours, an OpenCV peer, or saved results) on sequences."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from edge.cli.common import add_tracker_overrides, tracker_overrides
from edge.errors import ConfigError
from edge.evaluation.datasets import find_sequences, read_results
from edge.evaluation.harness import run_sequence
from edge.evaluation.metrics import mean_scores, score_sequence
from edge.evaluation.peers import PEERS, create_peer
from edge.evaluation.segments import temporal_segments
from edge.progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="success AUC, precision and normalised precision on annotated sequences",
        description="Run a tracker over every sequence in DIR (OTB-style, LaSOT or GOT-10k folders) "
                    "and report success AUC (21 thresholds, IoU > t), precision at 20 px and "
                    "normalised precision at 0.20, per sequence and as the mean over sequences.")
    p.add_argument("--sequences", required=True, metavar="DIR", help="folder of sequences (or one sequence)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", metavar="MODEL.onnx", help="edge-track model to run (default: the bundled model)")
    what.add_argument("--results", metavar="RESDIR",
                      help="score saved predictions RESDIR/<seq>.txt (x,y,w,h per line); runs nothing")
    p.add_argument("--tracker", default="mixformer", choices=["mixformer", *PEERS],
                   help="which tracker to run (default mixformer, needs --model)")
    p.add_argument("--nanotrack-dir", metavar="DIR", help="folder with NanoTrack's two ONNX files")
    add_tracker_overrides(p)
    p.add_argument("--starts", type=int, default=1, metavar="K",
                   help="temporal robustness: track each sequence from K evenly spaced frames "
                        "(OTB's TRE; the mean is over all runs). Default 1: from the first frame")
    p.add_argument("--save-results", metavar="DIR", help="write DIR/<seq>.txt with the predicted boxes")
    p.add_argument("--json", metavar="PATH", help="write the scores as JSON")
    p.set_defaults(func=run)


def _make_tracker(args):
    if args.tracker == "mixformer":
        from edge.engines import open_engine
        from edge.sample import model_or_bundled
        from edge.tracker import Tracker

        engine = open_engine(model_or_bundled(args.model), threads=args.threads)
        return f"mixformer-{engine.meta.preset}", Tracker(engine, **tracker_overrides(args))
    if args.model:
        raise ConfigError(f"--model is for the mixformer tracker, not {args.tracker}")
    return args.tracker, create_peer(args.tracker, args.nanotrack_dir)


def format_table(name: str, rows: list[dict], mean: dict) -> str:
    lines = [f"tracker: {name}", "",
             f"| {'sequence':<20} | {'frames':>6} | {'AUC %':>6} | {'P@20 %':>6} | {'Pnorm %':>7} | {'FPS':>7} |",
             f"|{'-' * 22}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 9}|{'-' * 9}|"]
    for r in rows + [dict(mean, name="mean", frames=sum(r["frames"] for r in rows))]:
        fps = f"{r['fps']:.1f}" if r.get("fps") is not None and np.isfinite(r["fps"]) else "-"
        lines.append(f"| {r['name']:<20} | {r['frames']:>6} | {100 * r['auc']:>6.1f} | "
                     f"{100 * r['precision']:>6.1f} | {100 * r['norm_precision']:>7.1f} | {fps:>7} |")
    return "\n".join(lines)


def run(args) -> int:
    sequences = find_sequences(args.sequences)
    if args.starts != 1:
        if args.results:
            raise ConfigError("--starts runs a tracker; it does not apply to saved --results")
        sequences = [seg for seq in sequences for seg in temporal_segments(seq, args.starts)]
    if args.results:
        name, tracker = f"results:{os.path.basename(os.path.normpath(args.results))}", None
    else:
        name, tracker = _make_tracker(args)
    if args.save_results:
        os.makedirs(args.save_results, exist_ok=True)

    rows, scores = [], []
    progress = Progress(sum(len(s) - 1 for s in sequences) if tracker else None, label=f"eval {name}")
    try:
        for seq in sequences:
            if tracker is None:
                boxes, fps = read_results(args.results, seq), None
            else:
                run_ = run_sequence(tracker, seq, progress=progress)
                boxes, fps = run_.boxes, run_.fps
            if args.save_results:
                np.savetxt(os.path.join(args.save_results, f"{seq.name}.txt"), boxes, fmt="%.3f", delimiter=",")
            s = score_sequence(boxes, seq.gt, seq.absent)
            scores.append(s)
            rows.append({"name": seq.name, "frames": s.frames, "auc": s.auc, "precision": s.precision,
                         "norm_precision": s.norm_precision, "fps": fps})
    finally:
        progress.close()
    mean = mean_scores(scores)
    fps_values = [r["fps"] for r in rows if r["fps"] is not None]
    mean["fps"] = float(np.mean(fps_values)) if fps_values else None
    print(format_table(name, rows, mean))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"tracker": name, "sequences": rows, "mean": mean}, f, indent=2)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0
