"""``edge-track eval``: score a tracker (ours, an OpenCV peer, or saved results) on sequences."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np

from edge.cli.common import add_model_option, add_tracker_overrides, tracker_overrides
from edge.errors import ConfigError
from edge.evaluation.datasets import find_sequences, read_results
from edge.evaluation.harness import run_sequence
from edge.evaluation.metrics import FAILED_IOU, TRACKED_IOU, LostCounts, lost_counts, mean_scores, score_sequence
from edge.evaluation.peers import PEERS, create_peer
from edge.evaluation.rounding_noise import GREY_LEVELS, spread, with_noise
from edge.evaluation.segments import temporal_segments
from edge.io.progress import Progress
from edge.trackers.lost_search import LostSearch
from edge.trackers.state import TrackState


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="success AUC, precision and normalised precision on annotated sequences",
        description="Run a tracker over every sequence in DIR (OTB-style, LaSOT or GOT-10k folders) "
                    "through the same per-frame step as the device (the search widens while LOST) and "
                    "report success AUC (21 thresholds, IoU > t), precision at 20 px and normalised "
                    "precision at 0.20, per sequence and as the mean over sequences, and how the LOST "
                    "state sat against the truth.")
    p.add_argument("--sequences", required=True, metavar="DIR", help="folder of sequences (or one sequence)")
    what = p.add_mutually_exclusive_group()
    add_model_option(what, "tracker to run")
    what.add_argument("--results", metavar="RESDIR",
                      help="score saved predictions: RESDIR/<seq>.txt (x,y,w,h per line) or the <seq>.csv "
                           "that track --csv writes (its LOST column is scored too); runs nothing")
    p.add_argument("--tracker", default="model", choices=["model", "mixformer", *PEERS],
                   help="model (default): --model, or the default tracker; or one of OpenCV's trackers "
                        "as a peer (mixformer: the same as model, its old name)")
    p.add_argument("--nanotrack-dir", metavar="DIR",
                   help="folder with NanoTrack's two ONNX files (required by --tracker nanotrack)")
    p.add_argument("--vittrack-model", metavar="FILE",
                   help="VitTrack's ONNX file, for --tracker vittrack (OpenCV's cv2.TrackerVit) or "
                        "vittrack-onnxruntime (the runtime's own loop, OpenCV's conventions) or vittrack-rgb "
                        "(that loop feeding the network RGB instead of OpenCV's BGR)")
    add_tracker_overrides(p)
    p.add_argument("--starts", type=int, default=1, metavar="K",
                   help="temporal robustness: track each sequence from K evenly spaced frames "
                        "(OTB's TRE; the mean is over all runs). Default 1: from the first frame")
    p.add_argument("--noise-runs", type=int, default=0, metavar="K",
                   help=f"also track everything K more times with +-{GREY_LEVELS:g} grey levels of seeded "
                        "noise on each search crop (what another CPU's rounding changes) and report every "
                        "AUC's mean, min and max over those runs (the band; OpenCV's trackers have none, "
                        "their plain run stands for it). Default 0")
    p.add_argument("--save-results", metavar="DIR",
                   help="write DIR/<seq>.txt with the predicted boxes, x,y,w,h pixels (default: none)")
    p.add_argument("--json", metavar="PATH", help="write the scores as JSON (default: none)")
    p.set_defaults(func=run)


def _make_tracker(args):
    if args.tracker in ("model", "mixformer"):
        from edge.build import open_named_tracker

        tracker, _, entry = open_named_tracker(args.model, threads=args.threads, **tracker_overrides(args))
        name = entry.name if entry is not None else \
            f"{tracker.meta.preset}:{os.path.basename(os.path.normpath(args.model))}"
        return name, tracker
    if args.model:
        raise ConfigError(f"--model runs edge-track's own trackers, not the peer {args.tracker}")
    peer = create_peer(args.tracker, args.nanotrack_dir, threads=args.threads, vittrack_model=args.vittrack_model)
    if args.tracker.startswith("vittrack"):     # one model, no version to add to the name
        return args.tracker, peer
    if args.tracker != "nanotrack-upstream":   # OpenCV's trackers: their name says it all
        return args.tracker, peer
    return f"{args.tracker}-{peer.info.model.split('-')[-1]}", peer


def format_table(name: str, rows: list[dict], mean: dict) -> str:
    lines = [f"tracker: {name}", "",
             f"| {'sequence':<20} | {'frames':>6} | {'AUC %':>6} | {'P@20 %':>6} | {'Pnorm %':>7} | {'FPS':>7} |",
             f"|{'-' * 22}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 9}|{'-' * 9}|"]
    for r in rows + [dict(mean, name="mean", frames=sum(r["frames"] for r in rows))]:
        fps = f"{r['fps']:.1f}" if r.get("fps") is not None and np.isfinite(r["fps"]) else "-"
        lines.append(f"| {r['name']:<20} | {r['frames']:>6} | {100 * r['auc']:>6.1f} | "
                     f"{100 * r['precision']:>6.1f} | {100 * r['norm_precision']:>7.1f} | {fps:>7} |")
    return "\n".join(lines)


def _score(tracker, sequences, args, progress, save: bool) -> tuple[list[dict], list, LostCounts, int]:
    rows, scores, lost, with_states = [], [], LostCounts(), 0
    for seq in sequences:
        if tracker is None:
            boxes, states = read_results(args.results, seq)
            fps = None
        else:
            run_ = run_sequence(tracker, seq, progress=progress)
            boxes, states, fps = run_.boxes, run_.states, run_.fps
        if save:
            np.savetxt(os.path.join(args.save_results, f"{seq.name}.txt"), boxes, fmt="%.3f", delimiter=",")
        s = score_sequence(boxes, seq.gt, seq.absent)
        scores.append(s)
        if states is not None:
            with_states += 1
            lost = lost + lost_counts(boxes, seq.gt, [st == TrackState.LOST.value for st in states], seq.absent)
        rows.append({"name": seq.name, "frames": s.frames, "auc": s.auc, "precision": s.precision,
                     "norm_precision": s.norm_precision, "fps": fps})
    return rows, scores, lost, with_states


def format_lost(lost: LostCounts, runs_with_states: int, runs: int) -> str:
    if runs_with_states == 0:
        return "LOST: not scored (the results hold boxes only: track --csv files carry the states)"
    if lost.on_failed is None and lost.on_tracked is None:
        return "LOST: no frame to judge it on"
    part = lambda share, n, what: f"{100 * share:.1f} % of {n} {what}" if share is not None else f"no {what}"
    return (f"LOST on {part(lost.on_failed, lost.failed, f'failed frames (IoU < {FAILED_IOU:g})')}, "
            f"on {part(lost.on_tracked, lost.tracked, f'tracked frames (IoU > {TRACKED_IOU:g})')}"
            + (f" ({runs - runs_with_states} of {runs} runs hold boxes only)" if runs_with_states < runs else ""))


def format_noise_table(rows: list[dict], mean_auc: float, noise: dict) -> str:
    lines = [f"rounding noise: {noise['runs']} more runs, +-{noise['grey_levels']:g} grey levels on every "
             "search crop (seeds 1..K); a difference inside [min, max] is rounding, not the model", "",
             f"| {'sequence':<20} | {'AUC %':>6} | {'mean %':>6} | {'min %':>6} | {'max %':>6} |",
             f"|{'-' * 22}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|"]
    for r, n in [*zip(rows, noise["sequences"]), ({"name": "mean", "auc": mean_auc}, noise["mean"])]:
        lines.append(f"| {r['name']:<20} | {100 * r['auc']:>6.1f} | {100 * n['auc_mean']:>6.1f} | "
                     f"{100 * n['auc_min']:>6.1f} | {100 * n['auc_max']:>6.1f} |")
    return "\n".join(lines)


def run(args) -> int:
    sequences = find_sequences(args.sequences)
    if args.starts != 1:
        if args.results:
            raise ConfigError("--starts runs a tracker; it does not apply to saved --results")
        sequences = [seg for seq in sequences for seg in temporal_segments(seq, args.starts)]
    if args.noise_runs < 0:
        raise ConfigError(f"--noise-runs must be 0 or more, got {args.noise_runs}")
    if args.noise_runs and args.results:
        raise ConfigError("--noise-runs perturbs a tracker's input: it does not apply to saved --results")
    if args.results:
        name, tracker = f"results:{os.path.basename(os.path.normpath(args.results))}", None
    else:
        name, tracker = _make_tracker(args)
    if args.save_results:
        os.makedirs(args.save_results, exist_ok=True)

    noisy = [with_noise(tracker, seed) for seed in range(1, args.noise_runs + 1)] if tracker else []
    if any(t is None for t in noisy):
        print(f"{name}: OpenCV runs its own input; its plain run stands for the band", file=sys.stderr)
        noisy = []
    # One LOST search per tracker for the whole run: it knows the tracker's own search size.
    if tracker is not None:
        tracker, noisy = LostSearch(tracker), [LostSearch(t) for t in noisy]
    frames = sum(len(s) - 1 for s in sequences) * (1 + len(noisy))
    progress = Progress(frames if tracker else None, label=f"eval {name}")
    noise_aucs = []
    try:
        rows, scores, lost, with_states = _score(tracker, sequences, args, progress, save=bool(args.save_results))
        for copy in noisy:
            _, run_scores, _, _ = _score(copy, sequences, args, progress, save=False)
            noise_aucs.append([s.auc for s in run_scores])
    finally:
        progress.close()
    mean = mean_scores(scores)
    fps_values = [r["fps"] for r in rows if r["fps"] is not None]
    mean["fps"] = float(np.mean(fps_values)) if fps_values else None
    mean["lost_on_failed"], mean["lost_on_tracked"] = lost.on_failed, lost.on_tracked
    print(format_table(name, rows, mean))
    print(format_lost(lost, with_states, len(sequences)))
    report = {"tracker": name, "sequences": rows, "mean": mean, "lost": dataclasses.asdict(lost)}
    if noise_aucs:
        sp = spread(np.array(noise_aucs))
        report["noise"] = {
            "runs": args.noise_runs, "grey_levels": GREY_LEVELS,
            "sequences": [{"name": r["name"], "auc_mean": float(a), "auc_min": float(lo), "auc_max": float(hi)}
                          for r, a, lo, hi in zip(rows, sp["mean"], sp["min"], sp["max"])],
            "mean": dict(zip(("auc_mean", "auc_min", "auc_max"), map(float, sp["overall"]))),
        }
        print()
        print(format_noise_table(rows, mean["auc"], report["noise"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0
