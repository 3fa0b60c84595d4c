"""``edge-track bench``: every available engine, side by side, in one run.

The baseline is the official-style PyTorch fp32 full forward (templates re-encoded every frame),
run in this process; each engine runs in its own runtime-only process (``python -m
edge.benchmark``: no torch imported), so its peak RSS is its own. Accuracy is measured against the
fp32 PyTorch tracker on the same real frames: mean IoU of the boxes frame by frame, and the
difference in success AUC against the ground truth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from edge.benchmark import physical_cores, load_frames, summarize, track_all, TimedEngine
from edge.errors import EdgeTrackError
from edge.evaluation.metrics import iou, score_sequence
from edge.tracker import Tracker
from train.export import export_onnx, model_meta
from train.flops import frame_macs
from train.gemm_peak import gemm_peak_gops
from train.model import MixFormerV2
from train.torch_engine import TorchEngine

BASELINE = "pytorch-fp32-full"


@dataclass
class Candidate:
    """One engine row: how to build its model file and how the worker opens it."""

    name: str
    precision: str
    cached: bool
    build: object                      # callable(workdir) -> model path
    engine: str = "onnxruntime"
    worker_args: list[str] = field(default_factory=list)


def _size_mb(path: str) -> float:
    from edge.model_meta import step_path_for

    files = [path] + ([step_path_for(path)] if os.path.isfile(step_path_for(path)) else [])
    return sum(os.path.getsize(f) for f in files) / 1e6


def candidates(model: MixFormerV2, sha: str, sequences: str, calib_samples: int):
    """The engines this machine can run, and a reason for each it cannot."""
    from train.calibration_data import calibration_feeds
    from train.quantize import quantize_model

    built = {}

    def fp32(work):
        if "fp32" not in built:
            built["fp32"] = export_onnx(model, os.path.join(work, "fp32.onnx"), checkpoint_sha256=sha).path
        return built["fp32"]

    def int8_static(work):
        feeds = calibration_feeds(sequences, model_meta(model), samples=calib_samples)
        return quantize_model(fp32(work), os.path.join(work, "int8-static.onnx"), feeds=feeds).path

    def int8_dynamic(work):
        return quantize_model(fp32(work), os.path.join(work, "int8-dynamic.onnx")).path

    rows = [
        Candidate("onnxruntime-fp32-full", "fp32", False, fp32, worker_args=["--no-cache"]),
        Candidate("onnxruntime-fp32-cached", "fp32", True, fp32),
        Candidate("onnxruntime-int8-static-cached", "int8", True, int8_static),
        Candidate("onnxruntime-int8-dynamic-cached", "int8", True, int8_dynamic),
    ]
    skipped = {}
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            from train.quantize import convert_fp16

            rows.append(Candidate("onnxruntime-fp16-cuda-cached", "fp16", True,
                                  lambda work: convert_fp16(fp32(work), os.path.join(work, "fp16.onnx")).path,
                                  engine="onnxruntime-cuda"))
        else:
            skipped["onnxruntime-fp16"] = "no CUDA execution provider (FP16 brings no CPU speed-up)"
    except ImportError:  # pragma: no cover
        pass
    rows += _tflite_candidates(model, sha, skipped)
    rows += _tensorrt_candidates(skipped)
    return rows, skipped


def _tflite_candidates(model, sha, skipped):
    try:
        from train.export_tflite import export_tflite, tflite_export_available
    except ImportError:
        tflite_export_available = None
    if tflite_export_available is None or not tflite_export_available():
        skipped["tflite"] = "litert-torch / ai-edge-litert not installed (pip install 'edge-track[tflite]')"
        return []
    return [
        Candidate("tflite-fp32-cached", "fp32", True, engine="tflite",
                  build=lambda work: export_tflite(model, os.path.join(work, "fp32.tflite"), checkpoint_sha256=sha).path),
        Candidate("tflite-int8-dynamic-cached", "int8", True, engine="tflite",
                  build=lambda work: export_tflite(model, os.path.join(work, "int8.tflite"), checkpoint_sha256=sha,
                                                   quantize="dynamic-int8").path),
    ]


def _tensorrt_candidates(skipped):
    from edge.engines.tensorrt import tensorrt_available

    if not tensorrt_available():
        skipped["tensorrt"] = "TensorRT and pycuda are not installed (Jetson: JetPack's python3-libnvinfer)"
        return []
    skipped["tensorrt"] = "run 'edge-track build-trt' on the device and bench the engine there"
    return []


def run_worker(path: str, cand: Candidate, sequences: str, threads: int, max_frames: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, "-m", "edge.benchmark", "--model", path, "--engine", cand.engine,
           "--sequences", sequences, "--threads", str(threads), "--max-frames", str(max_frames),
           "--out", out, *cand.worker_args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeTrackError(f"{cand.name} failed: {last}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)
    finally:
        os.remove(out)


def accuracy(boxes: dict, reference: dict, clips) -> tuple[float, float]:
    """(mean IoU vs reference boxes over frames 1.., AUC(engine) - AUC(reference)) over clips."""
    ious, deltas = [], []
    for name, _, gt in clips:
        mine, ref = np.asarray(boxes[name]), np.asarray(reference[name])
        ious.append(float(np.mean(iou(mine[1:], ref[1:]))))
        deltas.append(score_sequence(mine, gt).auc - score_sequence(ref, gt).auc)
    return float(np.mean(ious)), float(np.mean(deltas))


def run_bench(model: MixFormerV2, sha: str, sequences: str, *, threads: int | None = None,
              max_frames: int = 60, calib_samples: int = 32, workdir: str | None = None,
              only: list[str] | None = None, extra_models: list[str] | None = None, log=print) -> dict:
    """extra_models: ready-made model files (e.g. a QAT export) measured beside the built ones."""
    threads = threads or physical_cores()
    torch.set_num_threads(threads)
    clips = load_frames(sequences, max_frames)
    meta = model_meta(model, sha)
    log(f"bench: MixFormerV2-{model.cfg.name}, {len(clips)} sequences, "
        f"{sum(len(c[1]) - 1 for c in clips)} tracked frames, {threads} threads")

    def torch_factory():
        timed = TimedEngine(TorchEngine(model, meta))
        return Tracker(timed), timed

    t0 = time.perf_counter()
    ref_boxes, frame_s, net_s = track_all(torch_factory, clips)
    baseline = {"name": BASELINE, **summarize(frame_s, net_s), "rss_mb": None,
                "size_mb": sum(p.numel() * p.element_size() for p in model.state_dict().values()) / 1e6,
                "speedup_vs_baseline": 1.0, "mean_iou_vs_fp32": 1.0, "auc_delta": 0.0}
    log(f"  {BASELINE}: {baseline['frame_median_ms']:.1f} ms/frame ({time.perf_counter() - t0:.0f} s)")

    rows, skipped = candidates(model, sha, sequences, calib_samples)
    if only:
        rows = [r for r in rows if any(o in r.name for o in only)]
    for path in extra_models or []:
        from edge.engines import engine_for
        from edge.engines.onnx import open_session, read_meta

        precision = read_meta(open_session(path), path).precision if engine_for(path) == "onnxruntime" else "int8"
        rows.append(Candidate(f"{engine_for(path)}-{precision} ({os.path.basename(path)})", precision, True,
                              build=lambda work, p=path: p, engine=engine_for(path)))
    engines = [baseline]
    with tempfile.TemporaryDirectory() as tmp:
        work = workdir or tmp
        os.makedirs(work, exist_ok=True)
        for cand in rows:
            t0 = time.perf_counter()
            try:
                path = cand.build(work)
                result = run_worker(path, cand, sequences, threads, max_frames)
            except EdgeTrackError as exc:
                skipped[cand.name] = str(exc)
                log(f"  {cand.name}: skipped ({exc})")
                continue
            mean_iou, auc_delta = accuracy(result.pop("boxes"), ref_boxes, clips)
            row = {"name": cand.name, **result, "size_mb": _size_mb(path),
                   "speedup_vs_baseline": baseline["frame_median_ms"] / result["frame_median_ms"],
                   "mean_iou_vs_fp32": mean_iou, "auc_delta": auc_delta,
                   "precision": cand.precision, "cached": cand.cached}
            engines.append(row)
            log(f"  {cand.name}: {row['frame_median_ms']:.1f} ms/frame ({time.perf_counter() - t0:.0f} s)")

    cfg = model.cfg
    peak = {"fp32_gflops": gemm_peak_gops(False, threads), "int8_gops": gemm_peak_gops(True, threads)}
    ceiling = {}
    for cached in (False, True):
        flops = frame_macs(cfg, cached).flops
        key = "cached" if cached else "full"
        ceiling[key] = {"gflops_per_frame": flops / 1e9,
                        "fp32_ms": flops / (peak["fp32_gflops"] * 1e9) * 1e3,
                        "int8_ms": flops / (peak["int8_gops"] * 1e9) * 1e3}
    for row in engines:
        c = ceiling["cached" if row.get("cached") else "full"]
        floor = c["int8_ms"] if row.get("precision") == "int8" else c["fp32_ms"]
        row["x_over_flop_ceiling"] = row["median_ms"] / floor
    return {"baseline": BASELINE, "variant": cfg.name, "threads": threads, "sequences": [c[0] for c in clips],
            "frames": sum(len(c[1]) - 1 for c in clips), "engines": engines, "skipped": skipped,
            "machine_peak": peak, "flop_ceiling": ceiling}


def format_table(report: dict) -> str:
    head = ("| engine | net median ms | net p90 ms | frame median ms | FPS | RSS MB | size MB | speed-up "
            "| x FLOP ceiling | mean IoU vs fp32 | AUC delta |")
    lines = [head, "|" + "---|" * 11]
    for r in report["engines"]:
        rss = f"{r['rss_mb']:.0f}" if r.get("rss_mb") else "-"
        lines.append(f"| {r['name']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['frame_median_ms']:.1f} | "
                     f"{r['fps']:.1f} | {rss} | {r['size_mb']:.1f} | {r['speedup_vs_baseline']:.2f}x | "
                     f"{r['x_over_flop_ceiling']:.2f} | {r['mean_iou_vs_fp32']:.3f} | {100 * r['auc_delta']:+.2f} |")
    peak, ceil = report["machine_peak"], report["flop_ceiling"]
    lines += ["", f"MixFormerV2-{report['variant']}, {report['threads']} threads, {report['frames']} frames of "
              f"{', '.join(report['sequences'])}. Baseline: {report['baseline']} (templates re-encoded every frame).",
              f"Machine GEMM peak (onnxruntime, measured now): fp32 {peak['fp32_gflops']:.0f} GFLOP/s, "
              f"int8 {peak['int8_gops']:.0f} GOP/s. Network FLOPs per frame: full {ceil['full']['gflops_per_frame']:.2f} G, "
              f"cached {ceil['cached']['gflops_per_frame']:.2f} G -> ceiling full {ceil['full']['fp32_ms']:.1f} ms fp32 / "
              f"{ceil['full']['int8_ms']:.1f} ms int8, cached {ceil['cached']['fp32_ms']:.1f} / {ceil['cached']['int8_ms']:.1f} ms.",
              "speed-up = baseline frame median / engine frame median; x FLOP ceiling = network median / ceiling "
              "(1.0 = the machine's GEMM peak)."]
    for name, why in report["skipped"].items():
        lines.append(f"not run: {name}: {why}")
    return "\n".join(lines)


def plot_png(report: dict, path: str) -> None:
    """Latency (x) against accuracy retention (y), drawn with OpenCV (no plotting dependency)."""
    import cv2

    W, H, m = 900, 520, 70
    img = np.full((H, W, 3), 255, np.uint8)
    rows = report["engines"]
    xmax = max(r["frame_median_ms"] for r in rows) * 1.1
    ymin = min(min(r["mean_iou_vs_fp32"] for r in rows), 0.9) - 0.02
    to_px = lambda ms, v: (int(m + ms / xmax * (W - 2 * m)), int(H - m - (v - ymin) / (1.0 - ymin + 0.01) * (H - 2 * m)))
    cv2.line(img, (m, H - m), (W - m, H - m), (0, 0, 0), 1)
    cv2.line(img, (m, m), (m, H - m), (0, 0, 0), 1)
    cv2.putText(img, "frame median ms", (W // 2 - 60, H - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "mean IoU vs fp32", (5, m - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for k in range(5):
        ms = xmax * k / 4
        cv2.putText(img, f"{ms:.0f}", (to_px(ms, ymin)[0] - 10, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    for r in rows:
        pt = to_px(r["frame_median_ms"], r["mean_iou_vs_fp32"])
        cv2.circle(img, pt, 5, (200, 60, 0), -1)
        cv2.putText(img, r["name"], (pt[0] + 6, pt[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    cv2.imwrite(path, img)
