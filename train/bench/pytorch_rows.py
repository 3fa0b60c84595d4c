"""The rows of ``edge-track bench`` that need PyTorch: its baseline and the engines built from a checkpoint.

The bench itself lives in the runtime (``edge.bench``, ``edge/cli/bench.py``); this module is its
plug-in (registered by ``train.commands.register_bench``). The baseline is the official-style
PyTorch fp32 full forward (templates re-encoded every frame), run in the bench's own process; the
engines built from the same checkpoint (onnxruntime fp32 full/cached, INT8 static/dynamic, FP16 on
CUDA, TFLite) are timed like any other row, each in its own runtime-only process, and compared with
the fp32 PyTorch tracker on the same real frames: mean IoU of the boxes frame by frame, and the
difference in success AUC against the ground truth. It also adds the FLOP ceiling columns: FLOPs
per frame counted from the architecture over this machine's GEMM peak, measured in the same run.
"""

from __future__ import annotations

import os

import torch

from edge.bench import session
from edge.bench.engine_timing import TimedEngine, summarize, track_all
from edge.bench.quiet import libraries_quiet
from edge.bench.rows import Row, extra_model_rows, runtime_rows
from edge.trackers.mixformer import MixFormerTracker
from train.bench.flops import frame_macs
from train.bench.gemm_peak import gemm_peak_gops
from train.bench.torch_engine import TorchEngine
from train.export.onnx import export_onnx, model_meta
from train.models.model import MixFormerV2
from train.models.presets import PRESETS

BASELINE = "pytorch-fp32-full"


class PyTorchRows:
    """A ``edge.bench.session.Contribution``: the PyTorch baseline and the engines built from ``model``."""

    baseline = BASELINE

    def __init__(self, model: MixFormerV2, sha: str, sequences: str, calib_samples: int = 32) -> None:
        self.model, self.sha = model, sha
        self.title = f"MixFormerV2-{model.cfg.name}"
        with libraries_quiet():
            self.rows, self.skipped = candidates(model, sha, sequences, calib_samples)

    def measure_baseline(self, threads: int, clips, pace_fps: float | None) -> tuple[dict, dict]:
        meta = model_meta(self.model, self.sha)

        def torch_factory():
            timed = TimedEngine(TorchEngine(self.model, meta))
            return MixFormerTracker(timed), timed

        torch.set_num_threads(threads)
        boxes, frame_s, net_s = track_all(torch_factory, clips, pace_fps=pace_fps)
        auc, prec = session.ground_truth_scores(boxes, clips)
        size = sum(p.numel() * p.element_size() for p in self.model.state_dict().values()) / 1e6
        return {"name": BASELINE, "threads": threads, **summarize(frame_s, net_s), "rss_mb": None, "auc": auc,
                "precision_20px": prec, "size_mb": size, "speedup_vs_baseline": 1.0, "mean_iou_vs_fp32": 1.0,
                "auc_delta": 0.0}, boxes

    def annotate(self, report: dict) -> None:
        """FLOP ceilings: each row's network FLOPs per frame (its own preset's, else the checkpoint's)
        over this machine's GEMM peak at its thread count, measured now."""
        cfg, counts = self.model.cfg, report["threads"]
        peaks = {t: {"fp32_gflops": gemm_peak_gops(False, t), "int8_gops": gemm_peak_gops(True, t)} for t in counts}
        ceiling = {}
        for cached in (False, True):
            flops = frame_macs(cfg, cached).flops
            ceiling["cached" if cached else "full"] = {
                "gflops_per_frame": flops / 1e9,
                "fp32_ms": {str(t): flops / (peaks[t]["fp32_gflops"] * 1e9) * 1e3 for t in counts},
                "int8_ms": {str(t): flops / (peaks[t]["int8_gops"] * 1e9) * 1e3 for t in counts}}
        prof = report.get("profile")
        for row in report["engines"]:
            flops = frame_macs(PRESETS.get(row.get("preset")) or cfg, bool(row.get("cached"))).flops
            peak = peaks[row["threads"]]
            floor = flops / ((peak["int8_gops"] if row.get("precision") == "int8" else peak["fp32_gflops"]) * 1e9)
            row["flop_ceiling_ms"] = floor * 1e3
            row["x_over_flop_ceiling"] = row["median_ms"] / row["flop_ceiling_ms"] if row["median_ms"] else None
            if prof and row["name"] == prof["engine"] and row["threads"] == counts[0]:
                prof["flop_ceiling_ms"] = row["flop_ceiling_ms"]
        report.update(variant=cfg.name, machine_peak={str(t): peaks[t] for t in counts}, flop_ceiling=ceiling)


def candidates(model: MixFormerV2, sha: str, sequences: str, calib_samples: int):
    """The engines this machine can run, and a reason for each it cannot."""
    from train.export.int8_inputs import int8_feeds
    from train.export.quantize import quantize_model

    built = {}

    def fp32(work):
        if "fp32" not in built:
            built["fp32"] = export_onnx(model, os.path.join(work, "fp32.onnx"), checkpoint_sha256=sha).path
        return built["fp32"]

    def int8_static(work):
        feeds = int8_feeds(sequences, model_meta(model), samples=calib_samples)
        return quantize_model(fp32(work), os.path.join(work, "int8-static.onnx"), feeds=feeds).path

    def int8_dynamic(work):
        return quantize_model(fp32(work), os.path.join(work, "int8-dynamic.onnx")).path

    rows = [
        Row("onnxruntime-fp32-full", "fp32", False, fp32, worker_args=["--no-cache"]),
        Row("onnxruntime-fp32-cached", "fp32", True, fp32),
        Row("onnxruntime-int8-static-cached", "int8", True, int8_static),
        Row("onnxruntime-int8-dynamic-cached", "int8", True, int8_dynamic),
    ]
    skipped = {}
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            from train.export.quantize import convert_fp16

            rows.append(Row("onnxruntime-fp16-cuda-cached", "fp16", True,
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
        from train.export.tflite import export_tflite, tflite_export_available
    except ImportError:
        tflite_export_available = None
    if tflite_export_available is None or not tflite_export_available():
        skipped["tflite"] = "litert-torch / ai-edge-litert not installed (pip install 'edge-track[tflite]')"
        return []
    return [
        Row("tflite-fp32-cached", "fp32", True, engine="tflite",
                  build=lambda work: export_tflite(model, os.path.join(work, "fp32.tflite"),
                                                   checkpoint_sha256=sha).path),
        Row("tflite-int8-dynamic-cached", "int8", True, engine="tflite",
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


def run_bench(model: MixFormerV2, sha: str, sequences: str, *, threads: int | list[int] | None = None,
              max_frames: int = 60, calib_samples: int = 32, workdir: str | None = None,
              only: list[str] | None = None, extra_models: list[str] | None = None, log=print,
              default_model: str | None = None, nanotrack_dir: str | None = None, profile: bool = True,
              rounds: int = 1, pace_fps: float | None = None, upstream_nanotrack: tuple[str, ...] = (),
              vittrack_model: str | None = None) -> dict:
    """The whole bench from Python: ``model``'s baseline and engines beside every runtime row
    (``edge.bench.rows.runtime_rows``: the bundled trackers or ``default_model``, OpenCV NanoTrack on
    ``nanotrack_dir``, ``upstream_nanotrack`` folders, VitTrack) and ``extra_models`` (ready-made
    files, e.g. a QAT export, compared with the PyTorch boxes). The rest as ``edge.bench.session.run_bench``."""
    skipped: dict = {}
    rows = runtime_rows(skipped, model=default_model, nanotrack_dir=nanotrack_dir,
                        upstream_nanotrack=upstream_nanotrack, vittrack_model=vittrack_model)
    return session.run_bench(rows, sequences, threads=threads, max_frames=max_frames, workdir=workdir, only=only,
                             extra_rows=extra_model_rows(extra_models or []), log=log, profile=profile,
                             rounds=rounds, pace_fps=pace_fps, skipped=skipped,
                             contribution=PyTorchRows(model, sha, sequences, calib_samples))
