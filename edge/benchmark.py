"""Measure one engine as it runs on a device: a runtime-only process (torch is never imported).

``edge-track bench`` starts one of these per engine, so each row's peak RSS is that engine's
alone. Usable by hand too::

    python -m edge.benchmark --model m.onnx --sequences DIR --threads 2 --out result.json

Per frame it records the network time (``Engine.run`` alone) and the whole-frame time
(``Tracker.update``: crop + normalise + engine + back-projection), and the boxes, for the
accuracy comparison made by the caller.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from edge.camera.folder import read_rgb
from edge.engines import ENGINES, open_engine
from edge.evaluation.datasets import find_sequences
from edge.tracker import Tracker


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    VmHWM belongs to the address space, which exec() replaces; ru_maxrss does not reset at exec
    on Linux and would report the (large, torch-holding) parent's peak for a fresh child.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def physical_cores() -> int:
    """Physical cores (hyper-threads share one), from /proc/cpuinfo; os.cpu_count() elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            pairs, physical, core = set(), None, None
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not line.strip():
                    if core is not None:
                        pairs.add((physical, core))
                    physical, core = None, None
            if core is not None:
                pairs.add((physical, core))
        if pairs:
            return max(1, min(len(pairs), os.cpu_count() or 1))
    except OSError:
        pass
    return os.cpu_count() or 1


class TimedEngine:
    """Wraps an engine and records how long each ``run`` takes."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.meta = engine.meta
        self.name = engine.name
        self.run_s: list[float] = []

    def set_templates(self, template, online_template) -> None:
        self.engine.set_templates(template, online_template)

    def run(self, search):
        start = time.perf_counter()
        out = self.engine.run(search)
        self.run_s.append(time.perf_counter() - start)
        return out

    def close(self) -> None:
        self.engine.close()


def load_frames(sequences_dir: str, max_frames: int):
    """[(name, [frame paths], gt (n, 4))]: frames are decoded one at a time, outside the timing,
    so neither decoding time nor a pile of decoded frames ends up in an engine's numbers."""
    return [(seq.name, seq.frames[:max_frames], seq.gt[:max_frames]) for seq in find_sequences(sequences_dir)]


def track_all(tracker_factory, clips, warmup_frames: int = 5):
    """Track every clip; returns (boxes {name: (n, 4)}, frame seconds list, network seconds list)."""
    tracker, timed = tracker_factory()
    name, frames, gt = clips[0]
    tracker.init(read_rgb(frames[0]), gt[0])
    for path in frames[1:1 + warmup_frames]:
        tracker.update(read_rgb(path))
    timed.run_s.clear()
    boxes, frame_s = {}, []
    for name, frames, gt in clips:
        tracker.init(read_rgb(frames[0]), gt[0])
        out = [tuple(gt[0])]
        for path in frames[1:]:
            frame = read_rgb(path)
            start = time.perf_counter()
            result = tracker.update(frame)
            frame_s.append(time.perf_counter() - start)
            out.append(result.box)
        boxes[name] = np.asarray(out)
    return boxes, frame_s, list(timed.run_s)


def summarize(frame_s, network_s) -> dict:
    frame_ms, net_ms = np.asarray(frame_s) * 1e3, np.asarray(network_s) * 1e3
    return {"median_ms": float(np.median(net_ms)), "p90_ms": float(np.percentile(net_ms, 90)),
            "frame_median_ms": float(np.median(frame_ms)), "frame_p90_ms": float(np.percentile(frame_ms, 90)),
            "fps": float(1e3 / np.median(frame_ms))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--engine", default="onnxruntime", choices=sorted(ENGINES))
    p.add_argument("--no-cache", action="store_true", help="run the full graph every frame")
    p.add_argument("--sequences", required=True)
    p.add_argument("--threads", type=int, default=physical_cores())
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    clips = load_frames(args.sequences, args.max_frames)
    kwargs = {"threads": args.threads}
    if args.no_cache:
        kwargs["use_cache"] = False

    def factory():
        timed = TimedEngine(open_engine(args.model, args.engine, **kwargs))
        return Tracker(timed), timed

    boxes, frame_s, network_s = track_all(factory, clips)
    result = summarize(frame_s, network_s)
    result["rss_mb"] = peak_rss_mb()
    result["torch_imported"] = "torch" in sys.modules
    result["boxes"] = {name: b.tolist() for name, b in boxes.items()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
