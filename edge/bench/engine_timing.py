"""Measure one engine as it runs on a device: a runtime-only process (torch is never imported).

``edge-track bench`` starts one of these per engine, so each row's peak RSS is that engine's
alone. Usable by hand too::

    python -m edge.bench.engine_timing --model m.onnx --sequences DIR --threads 2 --out result.json

Per frame it records the network time (``Engine.run`` alone) and the whole-frame time
(``MixFormerTracker.update``: crop + normalise + engine + back-projection), and the boxes, for the
accuracy comparison made by the caller. ``--peer nanotrack`` measures OpenCV's NanoTrack on the
same frames instead (whole-frame time only: OpenCV does not expose its network call).
``--profile`` adds onnxruntime's per-operator profile of the per-frame graph, run on the search
crops this tracker really produced. ``--pace FPS`` starts each frame 1/FPS s after the previous
one, as a camera delivers them, instead of back to back: between frames the inference threads go
idle, and waking them is part of what a device pays per frame.
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
from edge.errors import EdgeTrackError
from edge.evaluation.datasets import find_sequences
from edge.trackers.mixformer import MixFormerTracker


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

    def __init__(self, engine, keep_inputs: int = 0) -> None:
        self.engine = engine
        self.meta = engine.meta
        self.name = engine.name
        self.run_s: list[float] = []
        # The first templates and up to keep_inputs search crops, for the operator profile.
        self.keep_inputs = keep_inputs
        self.templates = None
        self.searches: list = []

    def set_templates(self, template, online_template) -> None:
        if self.keep_inputs and self.templates is None:
            self.templates = (template.copy(), online_template.copy())
        self.engine.set_templates(template, online_template)

    def run(self, search):
        if len(self.searches) < self.keep_inputs:
            self.searches.append(search.copy())
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


class Pacer:
    """Holds each frame back until its slot in a camera-rate schedule; ``fps`` None: no waiting.

    A frame that comes late (the previous one took longer than a slot) starts at once and the
    schedule restarts from it, as a camera that drops frames would: no burst of catch-up frames.
    """

    def __init__(self, fps: float | None, clock=time.perf_counter, sleep=time.sleep) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None

    def restart(self) -> None:
        self._next = None

    def wait(self) -> None:
        if not self.period:
            return
        now = self._clock()
        if self._next is None or self._next <= now:
            self._next = now + self.period
            return
        self._sleep(self._next - now)
        self._next += self.period


def track_all(tracker_factory, clips, warmup_frames: int = 5, pace_fps: float | None = None):
    """Track every clip; returns (boxes {name: (n, 4)}, frame seconds list, network seconds list).

    pace_fps: start frames at this rate (see ``Pacer``) rather than back to back."""
    tracker, timed = tracker_factory()
    pacer = Pacer(pace_fps)
    name, frames, gt = clips[0]
    tracker.init(read_rgb(frames[0]), gt[0])
    for path in frames[1:1 + warmup_frames]:
        tracker.update(read_rgb(path))
    timed.run_s.clear()
    boxes, frame_s = {}, []
    for name, frames, gt in clips:
        tracker.init(read_rgb(frames[0]), gt[0])
        out = [tuple(gt[0])]
        pacer.restart()
        for path in frames[1:]:
            frame = read_rgb(path)
            pacer.wait()
            start = time.perf_counter()
            result = tracker.update(frame)
            frame_s.append(time.perf_counter() - start)
            out.append(result.box)
        boxes[name] = np.asarray(out)
    return boxes, frame_s, list(timed.run_s)


def summarize(frame_s, network_s) -> dict:
    """Medians and p90s in ms; the network ones are None when nothing timed the network alone."""
    frame_ms, net_ms = np.asarray(frame_s) * 1e3, np.asarray(network_s) * 1e3
    net = ({"median_ms": float(np.median(net_ms)), "p90_ms": float(np.percentile(net_ms, 90))} if len(net_ms)
           else {"median_ms": None, "p90_ms": None})
    return {**net, "frame_median_ms": float(np.median(frame_ms)), "frame_p90_ms": float(np.percentile(frame_ms, 90)),
            "fps": float(1e3 / np.median(frame_ms))}


class _Untimed:
    """A peer tracker has no separate network call to time."""

    run_s: list[float] = []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.bench.engine_timing", description=__doc__.splitlines()[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model")
    what.add_argument("--peer", choices=["nanotrack", "nanotrack-upstream", "kcf", "csrt", "vittrack",
                                         "vittrack-onnxruntime", "vittrack-rgb"],
                      help="a peer tracker instead of a model (OpenCV's, or NanoTrack's own loop on onnxruntime)")
    p.add_argument("--nanotrack-dir", metavar="DIR", help="with --peer nanotrack(-upstream): its two ONNX files")
    p.add_argument("--vittrack-model", metavar="FILE", help="with --peer vittrack*: its ONNX file")
    p.add_argument("--engine", default="onnxruntime", choices=sorted(ENGINES))
    p.add_argument("--profile", action="store_true",
                   help="onnxruntime engines: add the per-operator profile of the per-frame graph")
    p.add_argument("--no-cache", action="store_true", help="run the full graph every frame")
    p.add_argument("--sequences", required=True)
    p.add_argument("--threads", type=int, default=physical_cores())
    p.add_argument("--max-frames", type=int, default=60)
    p.add_argument("--pace", type=float, default=None, metavar="FPS",
                   help="start frames at a camera's rate instead of back to back")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.pace is not None and not 0 < args.pace < float("inf"):
        print(f"error: --pace must be a positive frame rate, got {args.pace}", file=sys.stderr)
        return 2

    clips = load_frames(args.sequences, args.max_frames)
    kwargs = {"threads": args.threads}
    if args.no_cache:
        kwargs["use_cache"] = False

    keep = 30 if args.profile else 0
    made = []

    def factory():
        if args.peer:
            import cv2

            from edge.evaluation.peers import create_peer

            cv2.setNumThreads(args.threads)     # the peer gets the same threads as the engines it is compared with
            return create_peer(args.peer, args.nanotrack_dir, threads=args.threads,
                               vittrack_model=args.vittrack_model), _Untimed()
        timed = TimedEngine(open_engine(args.model, args.engine, **kwargs), keep_inputs=keep)
        made.append(timed)
        return MixFormerTracker(timed), timed

    try:
        boxes, frame_s, network_s = track_all(factory, clips, pace_fps=args.pace)
    except EdgeTrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = summarize(frame_s, network_s)
    if args.profile and made and args.engine == "onnxruntime" and made[0].searches:
        from edge.bench.op_profile import profile_engine_graph

        timed = made[0]
        result["profile"] = profile_engine_graph(args.model, *timed.templates, timed.searches, args.threads)
    result["rss_mb"] = peak_rss_mb()
    result["torch_imported"] = "torch" in sys.modules
    result["boxes"] = {name: b.tolist() for name, b in boxes.items()}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
