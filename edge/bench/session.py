"""One bench run: every row, each in its own runtime-only worker process, at each thread count, in rounds.

Rows that need PyTorch come from a ``Contribution`` (train/bench/pytorch_rows.py supplies one): a baseline
measured in this process, engines built from a checkpoint, the reference boxes they are compared
with, and the FLOP ceiling columns. Without one the run times what a device can run, torch-free.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Protocol

import numpy as np

from edge.bench.engine_timing import load_frames, physical_cores
from edge.bench.quiet import libraries_quiet
from edge.bench.rows import NANOTRACK_PEER, Row
from edge.errors import ConfigError, EdgeTrackError
from edge.evaluation.metrics import iou, score_sequence

TIMING_KEYS = ("median_ms", "p90_ms", "frame_median_ms", "frame_p90_ms")


class Contribution(Protocol):
    """Rows a plug-in adds (train/bench/pytorch_rows.py: the PyTorch baseline, engines built from a checkpoint)."""

    title: str                # what the run is about, e.g. "MixFormerV2-S"
    baseline: str             # the name of the row measured in this process
    rows: list[Row]           # built (in ``build``) and timed like any other row
    skipped: dict             # {row name: why it cannot run here}

    def measure_baseline(self, threads: int, clips, pace_fps: float | None) -> tuple[dict, dict]:
        """(the baseline's row at this thread count, its boxes {clip: (n, 4)})."""

    def annotate(self, report: dict) -> None:
        """Add what needs the network's architecture (FLOP ceilings) to the finished report."""


def run_worker(path: str | None, row: Row, sequences: str, threads: int, max_frames: int,
               profile: bool = False, pace_fps: float | None = None) -> dict:
    """Time one row in a fresh ``python -m edge.bench.engine_timing`` process (no torch: its peak RSS is its own)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    what = ["--peer", row.peer] if row.peer else ["--model", path, "--engine", row.engine]
    cmd = [sys.executable, "-m", "edge.bench.engine_timing", *what,
           "--sequences", sequences, "--threads", str(threads), "--max-frames", str(max_frames),
           "--out", out, *row.worker_args, *(["--profile"] if profile else []),
           *(["--pace", str(pace_fps)] if pace_fps else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeTrackError(f"{row.name} failed: {last}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)
    finally:
        os.remove(out)


def merge_rounds(results: list[dict]) -> dict:
    """One row's worker results from several rounds -> one: each timing the median over rounds
    (a round's drift on a shared machine then cannot decide a comparison), peak RSS the largest,
    boxes from the first round (tracking is deterministic; timing is not)."""
    merged = dict(results[0])
    for key in TIMING_KEYS:
        values = [r[key] for r in results if r.get(key) is not None]
        merged[key] = float(np.median(values)) if values else None
    merged["fps"] = 1e3 / merged["frame_median_ms"]
    if any(r.get("rss_mb") is not None for r in results):
        merged["rss_mb"] = max(r["rss_mb"] for r in results if r.get("rss_mb") is not None)
    merged["rounds"] = len(results)
    return merged


def ground_truth_scores(boxes: dict, clips) -> tuple[float, float]:
    """(mean success AUC, mean precision at 20 px) over clips, against the ground truth."""
    scores = [score_sequence(np.asarray(boxes[name]), gt) for name, _, gt in clips]
    return float(np.mean([s.auc for s in scores])), float(np.mean([s.precision for s in scores]))


def accuracy(boxes: dict, reference: dict, clips) -> tuple[float, float]:
    """(mean IoU vs reference boxes over frames 1.., AUC(engine) - AUC(reference)) over clips."""
    ious, deltas = [], []
    for name, _, gt in clips:
        mine, ref = np.asarray(boxes[name]), np.asarray(reference[name])
        ious.append(float(np.mean(iou(mine[1:], ref[1:]))))
        deltas.append(score_sequence(mine, gt).auc - score_sequence(ref, gt).auc)
    return float(np.mean(ious)), float(np.mean(deltas))


def thread_counts(threads) -> list[int]:
    """``threads`` (an int, a list of ints, or None: the physical cores) as a list of distinct
    counts >= 1, in the order given."""
    counts = [threads] if threads is None or isinstance(threads, int) else list(threads)
    counts = [physical_cores() if t is None else t for t in counts]
    if not counts or any(not isinstance(t, int) or t < 1 for t in counts):
        raise ConfigError(f"--threads must be positive thread counts, got {threads}")
    return list(dict.fromkeys(counts))


def profile_target(engines: list[dict], rows: dict[str, Row]) -> dict | None:
    """The row to profile: the benched checkpoint's fastest onnxruntime INT8 engine, the one its FLOP
    ceiling is about. An independent model (the default one) only when no such engine ran."""
    int8 = [r for r in engines if r.get("precision") == "int8" and r.get("median_ms") is not None
            and r["name"] in rows and rows[r["name"]].engine == "onnxruntime"]
    own = [r for r in int8 if not rows[r["name"]].independent]
    return min(own or int8, key=lambda r: r["median_ms"]) if int8 else None


def threads_text(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def threads_list_text(counts: list[int]) -> str:
    return " and ".join(map(str, counts)) + (" thread" if counts == [1] else " threads")


def _size_mb(path: str) -> float:
    """A model file with its step graph, or a peer's folder (its ONNX files)."""
    from edge.engines.model_meta import step_path_for

    if os.path.isdir(path):
        files = [os.path.join(path, f) for f in os.listdir(path) if f.endswith(".onnx")]
    else:
        files = [path] + ([step_path_for(path)] if os.path.isfile(step_path_for(path)) else [])
    return sum(os.path.getsize(f) for f in files) / 1e6


def run_bench(rows: list[Row], sequences: str, *, threads: int | list[int] | None = None, max_frames: int = 60,
              workdir: str | None = None, only: list[str] | None = None, extra_rows: list[Row] = (),
              log=print, profile: bool = True, rounds: int = 1, pace_fps: float | None = None,
              skipped: dict | None = None, contribution: Contribution | None = None) -> dict:
    """Time ``rows`` (those whose name contains one of ``only``, when given), the contribution's
    rows and baseline, and ``extra_rows`` on the same frames.

    threads: one count or several ([1, 2]): every row is measured at each, and each row carries its
    ``threads`` and its whole-frame time over OpenCV NanoTrack's at that count.

    rounds: every row's worker runs this many times, the rows (and thread counts) taking turns
    (A1 B1 A2 B2, A1 B1 A2 B2, ...), and each timing is the median over rounds: on a machine whose
    speed drifts, every row then sees the same mix of fast and slow minutes.

    pace_fps: every row gets its frames at this rate, as from a camera (``edge.bench.engine_timing.Pacer``);
    the profile run is never paced. profile: profile the best INT8 onnxruntime engine (at the first
    thread count).
    """
    if rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {rounds}")
    if pace_fps is not None and not (pace_fps > 0 and np.isfinite(pace_fps)):
        raise ConfigError(f"--pace must be a positive frame rate, got {pace_fps}")
    skipped = {} if skipped is None else skipped
    skipped.update(getattr(contribution, "skipped", None) or {})
    counts = thread_counts(threads)
    clips = load_frames(sequences, max_frames)
    title = f"{contribution.title}, " if contribution else ""
    log(f"bench: {title}{len(clips)} sequences, {sum(len(c[1]) - 1 for c in clips)} tracked frames, "
        f"{threads_list_text(counts)}")

    baselines, ref_boxes = {}, None
    for t in (counts if contribution else ()):
        t0 = time.perf_counter()
        baselines[t], boxes = contribution.measure_baseline(t, clips, pace_fps)
        if ref_boxes is None:                   # tracking is deterministic: the first count's boxes
            ref_boxes = boxes
        log(f"  {contribution.baseline}, {threads_text(t)}: {baselines[t]['frame_median_ms']:.1f} ms/frame "
            f"({time.perf_counter() - t0:.0f} s)")

    rows = (list(contribution.rows) if contribution else []) + list(rows)
    if only:
        rows = [r for r in rows if any(o in r.name for o in only)]
    rows += list(extra_rows)
    engines, paths, profile_report = [], {}, None
    with tempfile.TemporaryDirectory() as tmp:
        work = workdir or tmp
        os.makedirs(work, exist_ok=True)
        built = []
        for row in rows:
            try:
                with libraries_quiet():
                    built.append((row, row.build(work)))
            except EdgeTrackError as exc:
                skipped[row.name] = str(exc)
                log(f"  {row.name}: skipped ({exc})")
        runs: dict[tuple, list[dict]] = {(row.name, t): [] for row, _ in built for t in counts}
        for _ in range(rounds):
            for row, path in built:
                for t in counts:
                    if row.name in skipped:
                        continue
                    try:
                        runs[row.name, t].append(run_worker(path, row, sequences, t, max_frames, pace_fps=pace_fps))
                    except EdgeTrackError as exc:
                        skipped[row.name] = str(exc)
                        log(f"  {row.name}: skipped ({exc})")
        for t in counts:
            if t in baselines:
                engines.append(baselines[t])
            for row, path in built:
                if row.name in skipped:
                    continue
                engines.append(_row_report(row, path, t, merge_rounds(runs[row.name, t]), clips, ref_boxes,
                                           baselines.get(t)))
                paths[row.name] = (path, row)
                log(f"  {row.name}, {threads_text(t)}: {engines[-1]['frame_median_ms']:.1f} ms/frame, "
                    f"AUC {100 * engines[-1]['auc']:.1f}")
        first = [r for r in engines if r["threads"] == counts[0]]
        best = profile_target(first, {name: row for name, (_, row) in paths.items()})
        if profile and best is not None:
            path, row = paths[best["name"]]
            try:
                prof = run_worker(path, row, sequences, counts[0], min(max_frames, 30), profile=True)["profile"]
                profile_report = {"engine": best["name"], "threads": counts[0], "net_median_ms": best["median_ms"],
                                  **prof}
                log(f"  profiled {best['name']}")
            except (EdgeTrackError, KeyError) as exc:
                skipped["profile"] = str(exc)

    for t in counts:
        peer = next((r for r in engines if r["threads"] == t and r["name"].startswith(NANOTRACK_PEER)), None)
        for r in engines:
            if r["threads"] == t:
                r["frame_over_nanotrack"] = r["frame_median_ms"] / peer["frame_median_ms"] if peer else None
    report = {"baseline": contribution.baseline if contribution else None, "title": title.rstrip(", ") or None,
              "threads": counts, "rounds": rounds, "pace_fps": pace_fps, "sequences": [c[0] for c in clips],
              "frames": sum(len(c[1]) - 1 for c in clips), "engines": engines, "skipped": skipped,
              "profile": profile_report}
    if contribution:
        contribution.annotate(report)
    return report


def _row_report(row: Row, path, t: int, result: dict, clips, ref_boxes, baseline: dict | None) -> dict:
    boxes = result.pop("boxes")
    compared = ref_boxes is not None and not row.independent
    mean_iou, auc_delta = accuracy(boxes, ref_boxes, clips) if compared else (None, None)
    auc, prec = ground_truth_scores(boxes, clips)
    return {"name": row.name, "threads": t, **result, "size_mb": _size_mb(path) if path else None,
            "speedup_vs_baseline": baseline["frame_median_ms"] / result["frame_median_ms"] if baseline else None,
            "mean_iou_vs_fp32": mean_iou, "auc_delta": auc_delta, "auc": auc, "precision_20px": prec,
            "precision": row.precision, "cached": row.cached, "preset": row.preset,
            "flop_ceiling_ms": None, "x_over_flop_ceiling": None}
