"""Choose a MixFormerV2 model's LOST rule on the validation split and write it into its metadata.

The score head is the confidence; what is chosen is the rule over it, ``lost_score_threshold`` held
for ``lost_frames`` frames in a row:

1. Track every validation sequence (two starts) with LOST switched off and keep, per frame, the
   score and the IoU with the truth.
2. For each ``lost_frames``, the highest threshold whose replayed rule keeps at most
   ``good_budget`` of the tracked frames LOST.
3. Run each of those rules inside the device's per-frame step (the search widens while LOST) and
   keep the one with the best AUC among those whose LOST state works (``LOST_ON_FAILED_MIN`` of
   the failed frames at least, the budget of the tracked ones at most); when none works, the one
   that comes closest within the budget; when none keeps the budget, the one that marks the fewest
   tracked frames LOST. The metadata says which of the three it was.

    python -m train.measure.lost_rule runs/student.onnx --validation ../shared/data/validation \\
        --output runs/student-lost.onnx

The output is the model (and its step graph) with the rule and how it was chosen in the metadata;
the input file is left as it was.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from edge.camera.folder import read_rgb
from edge.evaluation.datasets import find_sequences
from edge.evaluation.harness import run_sequence
from edge.evaluation.metrics import FAILED_IOU as FAILED
from edge.evaluation.metrics import TRACKED_IOU as TRACKED
from edge.evaluation.metrics import LostCounts, lost_counts, score_sequence
from edge.evaluation.metrics import iou as overlaps
from edge.evaluation.segments import temporal_segments
from edge.trackers.catalog import LOST_ON_FAILED_MIN, LOST_ON_TRACKED_MAX
from edge.trackers.state import TrackState

STARTS = 2
LOST_FRAMES = (1, 2, 3, 4, 5)
DEFAULT_BUDGET = 0.005      # half the 1 % of tracked frames the product promises, for unseen video


@dataclass
class Scored:
    """Per tracked frame of every run: the tracker's confidence, the IoU (NaN where the target is
    absent) and the run it is in."""

    conf: np.ndarray
    iou: np.ndarray
    run: np.ndarray


def streak_lost(conf: np.ndarray, run: np.ndarray, threshold: float, lost_frames: int) -> np.ndarray:
    """The tracker's LOST rule replayed: LOST once ``lost_frames`` frames in a row are below."""
    lost = np.zeros(len(conf), bool)
    streak, previous = 0, None
    for i, (c, r) in enumerate(zip(conf, run)):
        if r != previous:
            streak, previous = 0, r
        streak = streak + 1 if c < threshold else 0
        lost[i] = streak >= lost_frames
    return lost


def lost_shares(lost: np.ndarray, iou: np.ndarray) -> tuple[float, float]:
    """(share of failed frames marked LOST, share of tracked frames marked LOST)."""
    failed, tracked = iou < FAILED, iou > TRACKED
    return float(lost[failed].mean()) if failed.any() else 0.0, float(lost[tracked].mean()) if tracked.any() else 0.0


def budget_threshold(scored: Scored, lost_frames: int, good_budget: float) -> float:
    """The highest threshold whose replayed streak rule keeps at most ``good_budget`` of the
    tracked frames LOST (that share only grows with the threshold)."""
    candidates = np.unique(np.round(scored.conf, 4))
    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lost = streak_lost(scored.conf, scored.run, candidates[mid], lost_frames)
        if lost_shares(lost, scored.iou)[1] <= good_budget:
            lo = mid
        else:
            hi = mid - 1
    return float(candidates[lo])


def pick_rule(rows: list[dict], good_budget: float) -> tuple[dict, str]:
    """(rule, how it was picked). Of the rules whose LOST state works, the one that tracks best (AUC:
    widening the search costs accuracy when it starts too easily). When none works, the one that
    comes closest (the most failed frames LOST) within the budget of tracked frames. When none keeps
    the budget, the one that marks the fewest tracked frames LOST: a rule that cuts into good
    tracking is worse than one that misses failures."""
    within = [r for r in rows if (r["lost_on_tracked"] or 0.0) <= min(good_budget, LOST_ON_TRACKED_MAX)]
    works = [r for r in within if (r["lost_on_failed"] or 0.0) >= LOST_ON_FAILED_MIN]
    if works:
        return max(works, key=lambda r: (r["auc"], r["lost_on_failed"] or 0.0)), "the best AUC whose LOST state works"
    if within:
        return (max(within, key=lambda r: (r["lost_on_failed"] or 0.0, r["auc"])),
                "none works: the most failed frames LOST within the budget of tracked ones")
    return (min(rows, key=lambda r: (r["lost_on_tracked"] or 0.0, -r["auc"])),
            "none keeps the budget: the fewest tracked frames LOST")


def tracked_runs(open_tracker, folders, on_frame, exclude=frozenset(), log=None) -> tuple[np.ndarray, np.ndarray]:
    """Every sequence of ``folders`` (but ``exclude``) from ``STARTS`` starts, each by a fresh
    ``open_tracker()`` with no LOST search; ``on_frame(tracker, result)`` is called on each tracked
    frame. -> (IoU with the truth per frame, NaN where the target is absent; the run of each frame)."""
    iou, run = [], []
    runs = 0
    for folder in folders:
        for seq in find_sequences(folder):
            if seq.name in exclude:
                continue
            for seg in temporal_segments(seq, STARTS):
                tracker = open_tracker()
                tracker.init(read_rgb(seg.frames[0]), seg.gt[0])
                boxes = []
                for i in range(1, len(seg)):
                    result = tracker.update(read_rgb(seg.frames[i]))
                    boxes.append(result.box)
                    on_frame(tracker, result)
                ious = overlaps(np.asarray(boxes), seg.gt[1:])
                iou.extend(np.where(~seg.absent[1:], ious, np.nan))
                run.extend([runs] * len(boxes))
                runs += 1
            if log:
                log(f"{seq.name}: {len(iou)} frames")
    return np.asarray(iou, dtype=np.float64), np.asarray(run)


def collect(open_tracker, folder: str, log=None) -> Scored:
    """Scores and IoUs of ``open_tracker()`` (LOST off) over ``folder``, ``STARTS`` starts each."""
    conf = []
    iou, run = tracked_runs(open_tracker, [folder], lambda tracker, result: conf.append(float(result.score)), log=log)
    return Scored(np.asarray(conf), iou, run)


def in_the_loop(open_tracker, folder: str) -> dict:
    """AUC and LOST shares of ``open_tracker()`` inside the device's per-frame step."""
    aucs, lost = [], LostCounts()
    for seq in find_sequences(folder):
        for seg in temporal_segments(seq, STARTS):
            result = run_sequence(open_tracker(), seg)
            aucs.append(score_sequence(result.boxes, seg.gt, seg.absent).auc)
            lost = lost + lost_counts(result.boxes, seg.gt, [s == TrackState.LOST.value for s in result.states],
                                      seg.absent)
    return {"auc": float(np.mean(aucs)), "lost_on_failed": lost.on_failed, "lost_on_tracked": lost.on_tracked}


def choose(open_tracker, folder: str, good_budget: float = DEFAULT_BUDGET,
           log=None) -> tuple[dict, str, list[dict]]:
    """(the chosen rule, how it was picked, every rule tried) for ``open_tracker(lost_score_threshold,
    lost_frames)``."""
    # Threshold 0 never fires: a sigmoid score is never below it.
    scored = collect(lambda: open_tracker(0.0, 1), folder, log=log)
    rows = []
    for k in LOST_FRAMES:
        threshold = budget_threshold(scored, k, good_budget)
        row = {"lost_frames": k, "lost_score_threshold": threshold,
               **in_the_loop(functools.partial(open_tracker, threshold, k), folder)}
        if log:
            log(json.dumps(row))
        rows.append(row)
    return (*pick_rule(rows, good_budget), rows)


def _step_of(model_path: str, meta) -> str | None:
    """The step graph the runtime would open beside ``model_path`` (its metadata names it)."""
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), meta.step_file) if meta.step_file else None


def check_output(model_path: str, meta, output: str) -> None:
    """ModelError when writing ``output`` (and its step graph) would replace ``model_path`` or its
    step graph, by whatever path."""
    from edge.engines.model_meta import step_path_for
    from edge.errors import ModelError

    step_in = _step_of(model_path, meta)
    step_out = step_path_for(output) if step_in else None
    paths = [os.path.realpath(p) for p in (model_path, step_in, output, step_out) if p]
    if len(set(paths)) != len(paths):
        raise ModelError(f"{output} would overwrite {model_path} or its step graph: write it elsewhere")


def write_rule(model_path: str, output: str, rule: dict, fitted: dict) -> None:
    """``model_path`` (and its step graph) saved as ``output`` with ``rule`` in the metadata."""
    from edge.engines.model_meta import step_path_for
    from train.export.onnx_files import load_with_meta, save_together, set_meta

    proto, meta = load_with_meta(model_path)
    check_output(model_path, meta, output)
    step_in = _step_of(model_path, meta)
    step_out = step_path_for(output) if step_in else None
    extra = {**meta.extra, "lost_rule": fitted}
    new_meta = meta.replace(lost_score_threshold=rule["lost_score_threshold"], lost_frames=rule["lost_frames"],
                            step_file=os.path.basename(step_out) if step_out else "", extra=extra)
    files = {output: set_meta(proto, new_meta)}
    if step_in:
        step_proto, _ = load_with_meta(step_in)
        files[step_out] = set_meta(step_proto, new_meta)
    save_together(files)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a MixFormerV2 .onnx exported by edge-track (its step graph beside it)")
    p.add_argument("--validation", required=True, help="the validation split: the rule is chosen on it")
    p.add_argument("--good-budget", type=float, default=DEFAULT_BUDGET,
                   help="the most tracked frames the rule may mark LOST on the validation split (default 0.5%%)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", required=True, help="where the model with its rule is written")
    args = p.parse_args(argv)
    from edge.build import open_tracker_at
    from edge.errors import EdgeTrackError, ModelError
    from train.export.onnx_files import load_with_meta

    say = lambda text: print(text, file=sys.stderr, flush=True)
    try:
        # A bad file, a NanoTrack folder or an output over the input fails here, in one line.
        _, meta = load_with_meta(args.model)
        try:
            check_output(args.model, meta, args.output)
        except ModelError as exc:
            p.error(f"--output: {exc}")
        open_tracker_at(args.model, threads=args.threads)
        opener = lambda threshold, frames: open_tracker_at(args.model, threads=args.threads,
                                                           lost_score_threshold=threshold, lost_frames=frames)
        rule, picked, tried = choose(opener, args.validation, args.good_budget, log=say)
        fitted = {"tool": "python -m train.measure.lost_rule",
                  "chosen_on": os.path.basename(os.path.normpath(args.validation)) + f", {STARTS} starts, in the "
                               f"device's per-frame step: {picked}",
                  "good_budget": args.good_budget,
                  "validation": {k: round(rule[k] or 0.0, 4) for k in ("auc", "lost_on_failed", "lost_on_tracked")},
                  "tried": [{k: round(v or 0.0, 4) for k, v in r.items()} for r in tried]}
        write_rule(args.model, args.output, rule, fitted)
    except EdgeTrackError as exc:
        say(f"error: {exc}")
        return 2
    say(json.dumps({"lost_score_threshold": rule["lost_score_threshold"], "lost_frames": rule["lost_frames"],
                    **fitted["validation"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
