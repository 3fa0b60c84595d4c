"""``edge-track bench``: every available engine, side by side, in one run.

The baseline is the official-style PyTorch fp32 full forward (templates re-encoded every frame),
run in this process; each engine runs in its own runtime-only process (``python -m
edge.benchmark``: no torch imported), so its peak RSS is its own. Accuracy is measured against the
fp32 PyTorch tracker on the same real frames: mean IoU of the boxes frame by frame, and the
difference in success AUC against the ground truth; and, for every row, the success AUC itself.

Two rows do not come from the checkpoint: the default model (the bundled one, or ``--model``),
which is what users run, and NanoTrack (OpenCV), the peer it has to beat, measured on the same
frames in the same run. The best INT8 onnxruntime engine is run once more with onnxruntime's
profiler, so the report shows where its time above the FLOP ceiling goes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from edge.benchmark import TimedEngine, load_frames, physical_cores, summarize, track_all
from edge.errors import ConfigError, EdgeTrackError
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
    # Not built from the benched checkpoint: no IoU/AUC delta against its PyTorch boxes.
    independent: bool = False
    cfg: object = None                 # ModelConfig for the FLOP ceiling (None: the checkpoint's)
    peer: str | None = None            # an OpenCV tracker instead of a model file


def find_nanotrack_dir() -> str | None:
    """NanoTrack's ONNX files: $EDGE_TRACK_NANOTRACK_DIR, else ../shared/models/opencv beside the repo."""
    from edge.evaluation.peers import NANOTRACK_FILES

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    beside = os.path.join(os.path.dirname(repo), "shared", "models", "opencv")
    for folder in (os.environ.get("EDGE_TRACK_NANOTRACK_DIR"), beside):
        if folder and all(os.path.isfile(os.path.join(folder, f)) for f in NANOTRACK_FILES):
            return folder
    return None


def independent_candidates(default_model: str | None, nanotrack_dir: str | None, skipped: dict,
                           upstream_nanotrack: tuple[str, ...] = (), vittrack_model: str | None = None
                           ) -> list[Candidate]:
    """The default model's row and NanoTrack's, each measured like any engine; with
    ``upstream_nanotrack``, also NanoTrack's own loop on onnxruntime on each of those folders; with
    ``vittrack_model``, VitTrack through OpenCV's ``cv2.TrackerVit`` and through the runtime's loop
    (OpenCV's BGR input, and RGB)."""
    from edge.engines import engine_for
    from edge.sample import BUNDLED_MODEL

    rows = []
    path = default_model or (BUNDLED_MODEL if os.path.isfile(BUNDLED_MODEL) else None)
    if path is None:
        skipped["default-model"] = "no bundled model in this install and no --model given"
    else:
        precision, cfg = "int8", None
        if engine_for(path) == "onnxruntime":
            from edge.engines.onnx import open_session, read_meta
            from train.presets import PRESETS

            meta = read_meta(open_session(path), path)
            precision, cfg = meta.precision, PRESETS.get(meta.preset)
        rows.append(Candidate(f"default-model-{precision} ({os.path.basename(path)})", precision, True,
                              build=lambda work, p=path: p, engine=engine_for(path), independent=True, cfg=cfg))
    if nanotrack_dir is None:
        skipped["nanotrack"] = "NanoTrack's ONNX files not found (give --nanotrack-dir)"
    else:
        rows.append(Candidate("nanotrack (opencv)", "fp32", False, build=lambda work: None, engine="opencv",
                              worker_args=["--nanotrack-dir", nanotrack_dir], independent=True, peer="nanotrack"))
    # NanoTrack as its authors run it. Named so that "nanotrack (opencv)" stays the row every
    # ratio is taken against.
    for folder in upstream_nanotrack:
        from edge.nanotrack import NanoTrackModel

        try:
            version = NanoTrackModel(folder).settings.version
        except EdgeTrackError as exc:
            skipped[f"upstream nanotrack ({folder})"] = str(exc)
            continue
        rows.append(Candidate(f"upstream nanotrack-{version} (onnxruntime)", "fp32", False,
                              build=lambda work: None, engine="onnxruntime",
                              worker_args=["--nanotrack-dir", folder], independent=True, peer="nanotrack-upstream"))
    if vittrack_model:
        rows += _vittrack_candidates(vittrack_model, skipped)
    return rows


def _vittrack_candidates(path: str, skipped: dict) -> list[Candidate]:
    import cv2

    from edge.vittrack import VitTrackModel

    try:
        VitTrackModel(path).close()
    except EdgeTrackError as exc:
        skipped["vittrack"] = str(exc)
        return []
    rows = [Candidate(name, "fp32", False, build=lambda work: None, engine="onnxruntime",
                      worker_args=["--vittrack-model", path], independent=True, peer=peer)
            for name, peer in (("vittrack (onnxruntime)", "vittrack-onnxruntime"),
                               ("vittrack-rgb (onnxruntime)", "vittrack-rgb"))]
    if hasattr(cv2, "TrackerVit"):
        rows.insert(0, Candidate("vittrack (opencv)", "fp32", False, build=lambda work: None, engine="opencv",
                                 worker_args=["--vittrack-model", path], independent=True, peer="vittrack"))
    else:
        skipped["vittrack (opencv)"] = f"OpenCV {cv2.__version__} has no cv2.TrackerVit (4.9 or later)"
    return rows


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
                  build=lambda work: export_tflite(model, os.path.join(work, "fp32.tflite"),
                                                   checkpoint_sha256=sha).path),
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


def profile_target(engines: list[dict], cands: dict[str, Candidate]) -> dict | None:
    """The row to profile: the benched checkpoint's fastest onnxruntime INT8 engine, the one its FLOP
    ceiling is about. The default model (another network) only when it is the sole INT8 row."""
    int8 = [r for r in engines if r.get("precision") == "int8" and r.get("median_ms") is not None
            and r["name"] in cands and cands[r["name"]].engine == "onnxruntime"]
    own = [r for r in int8 if not cands[r["name"]].independent]
    return min(own or int8, key=lambda r: r["median_ms"]) if int8 else None


def run_worker(path: str, cand: Candidate, sequences: str, threads: int, max_frames: int,
               profile: bool = False, pace_fps: float | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    what = ["--peer", cand.peer] if cand.peer else ["--model", path, "--engine", cand.engine]
    cmd = [sys.executable, "-m", "edge.benchmark", *what,
           "--sequences", sequences, "--threads", str(threads), "--max-frames", str(max_frames),
           "--out", out, *cand.worker_args, *(["--profile"] if profile else []),
           *(["--pace", str(pace_fps)] if pace_fps else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeTrackError(f"{cand.name} failed: {last}")
        with open(out, encoding="utf-8") as f:
            return json.load(f)
    finally:
        os.remove(out)


TIMING_KEYS = ("median_ms", "p90_ms", "frame_median_ms", "frame_p90_ms")


def merge_rounds(results: list[dict]) -> dict:
    """One engine's worker results from several rounds -> one: each timing the median over rounds
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


@contextlib.contextmanager
def libraries_quiet():
    """Hold what third-party code prints while models are built (progress bars, INFO lines from
    C++ libraries, deprecation notices) in a file, and show it only when the build fails: the
    bench's own lines on stderr and its table on stdout then stand alone. At the file descriptors,
    so output from C++ is held too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as held, open(held.fileno(), "w", encoding="utf-8", closefd=False) as text:
        os.dup2(held.fileno(), 1)
        os.dup2(held.fileno(), 2)
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):   # sys.stdout may not be fd 1
                yield
            failed = False
        finally:
            text.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:   # not an engine the bench skips with its reason: the libraries' words may say why
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace"))
                sys.stderr.flush()


def run_bench(model: MixFormerV2, sha: str, sequences: str, *, threads: int | list[int] | None = None,
              max_frames: int = 60, calib_samples: int = 32, workdir: str | None = None,
              only: list[str] | None = None, extra_models: list[str] | None = None, log=print,
              default_model: str | None = None, nanotrack_dir: str | None = None, profile: bool = True,
              rounds: int = 1, pace_fps: float | None = None, upstream_nanotrack: tuple[str, ...] = (),
              vittrack_model: str | None = None) -> dict:
    """extra_models: ready-made model files (e.g. a QAT export) measured beside the built ones.

    threads: one count or several ([1, 2]): every row, the baseline included, is measured at each,
    and each row carries its ``threads`` and its whole-frame time over NanoTrack's at that count.

    pace_fps: every engine gets its frames at this rate, as from a camera, instead of back to back
    (``edge.benchmark.Pacer``); the profile run is never paced.

    rounds: every engine's worker runs this many times, the engines (and thread counts) taking
    turns (A1 B1 A2 B2, A1 B1 A2 B2, ...), and each timing is the median over rounds: on a machine
    whose speed drifts, every engine then sees the same mix of fast and slow minutes.

    default_model: the default model's row (None: the bundled model); nanotrack_dir: NanoTrack's
    files (None: ``find_nanotrack_dir``); profile: profile the best INT8 onnxruntime engine (at the
    first thread count); vittrack_model: VitTrack's ONNX file for its two rows (None: none).
    """
    if rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {rounds}")
    if pace_fps is not None and not (pace_fps > 0 and np.isfinite(pace_fps)):
        raise ConfigError(f"--pace must be a positive frame rate, got {pace_fps}")
    counts = thread_counts(threads)
    clips = load_frames(sequences, max_frames)
    meta = model_meta(model, sha)
    log(f"bench: MixFormerV2-{model.cfg.name}, {len(clips)} sequences, "
        f"{sum(len(c[1]) - 1 for c in clips)} tracked frames, {_threads_list(counts)}")

    def torch_factory():
        timed = TimedEngine(TorchEngine(model, meta))
        return Tracker(timed), timed

    baselines, ref_boxes = {}, None
    for t in counts:
        torch.set_num_threads(t)
        t0 = time.perf_counter()
        boxes, frame_s, net_s = track_all(torch_factory, clips, pace_fps=pace_fps)
        if ref_boxes is None:                   # tracking is deterministic: the first count's boxes
            ref_boxes = boxes
        auc, prec = ground_truth_scores(boxes, clips)
        baselines[t] = {"name": BASELINE, "threads": t, **summarize(frame_s, net_s), "rss_mb": None, "auc": auc,
                        "precision_20px": prec,
                        "size_mb": sum(p.numel() * p.element_size() for p in model.state_dict().values()) / 1e6,
                        "speedup_vs_baseline": 1.0, "mean_iou_vs_fp32": 1.0, "auc_delta": 0.0}
        log(f"  {BASELINE}, {_threads(t)}: {baselines[t]['frame_median_ms']:.1f} ms/frame "
            f"({time.perf_counter() - t0:.0f} s)")

    with libraries_quiet():
        rows, skipped = candidates(model, sha, sequences, calib_samples)
    rows += independent_candidates(default_model, nanotrack_dir or find_nanotrack_dir(), skipped, upstream_nanotrack,
                                   vittrack_model)
    if only:
        rows = [r for r in rows if any(o in r.name for o in only)]
    for path in extra_models or []:
        from edge.engines import engine_for
        from edge.engines.onnx import open_session, read_meta
        from train.presets import PRESETS

        precision, cfg = "int8", None
        if engine_for(path) == "onnxruntime":
            meta = read_meta(open_session(path), path)
            precision, cfg = meta.precision, PRESETS.get(meta.preset)   # its own FLOPs for its ceiling
        rows.append(Candidate(f"{engine_for(path)}-{precision} ({os.path.basename(path)})", precision, True,
                              build=lambda work, p=path: p, engine=engine_for(path), cfg=cfg))
    engines = []
    paths, profile_report = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        work = workdir or tmp
        os.makedirs(work, exist_ok=True)
        built = []
        for cand in rows:
            try:
                with libraries_quiet():
                    built.append((cand, cand.build(work)))
            except EdgeTrackError as exc:
                skipped[cand.name] = str(exc)
                log(f"  {cand.name}: skipped ({exc})")
        runs: dict[tuple, list[dict]] = {(cand.name, t): [] for cand, _ in built for t in counts}
        for _ in range(rounds):
            for cand, path in built:
                for t in counts:
                    if cand.name in skipped:
                        continue
                    try:
                        runs[cand.name, t].append(run_worker(path, cand, sequences, t, max_frames,
                                                             pace_fps=pace_fps))
                    except EdgeTrackError as exc:
                        skipped[cand.name] = str(exc)
                        log(f"  {cand.name}: skipped ({exc})")
        for t in counts:
            engines.append(baselines[t])
            for cand, path in built:
                if cand.name in skipped:
                    continue
                result = merge_rounds(runs[cand.name, t])
                boxes = result.pop("boxes")
                mean_iou, auc_delta = (None, None) if cand.independent else accuracy(boxes, ref_boxes, clips)
                auc, prec = ground_truth_scores(boxes, clips)
                row = {"name": cand.name, "threads": t, **result, "size_mb": _size_mb(path) if path else None,
                       "speedup_vs_baseline": baselines[t]["frame_median_ms"] / result["frame_median_ms"],
                       "mean_iou_vs_fp32": mean_iou, "auc_delta": auc_delta, "auc": auc, "precision_20px": prec,
                       "precision": cand.precision, "cached": cand.cached, "cfg": cand.cfg}
                engines.append(row)
                paths[cand.name] = (path, cand)
                log(f"  {cand.name}, {_threads(t)}: {row['frame_median_ms']:.1f} ms/frame, AUC {100 * auc:.1f}")
        first = [r for r in engines if r["threads"] == counts[0]]
        best = profile_target(first, {name: cand for name, (_, cand) in paths.items()})
        if profile and best is not None:
            path, cand = paths[best["name"]]
            try:
                prof = run_worker(path, cand, sequences, counts[0], min(max_frames, 30), profile=True)["profile"]
                profile_report = {"engine": best["name"], "threads": counts[0], "net_median_ms": best["median_ms"],
                                  **prof}
                log(f"  profiled {best['name']}")
            except (EdgeTrackError, KeyError) as exc:
                skipped["profile"] = str(exc)

    for t in counts:
        peer = next((r for r in engines if r["threads"] == t and r["name"].startswith("nanotrack")), None)
        for row in engines:
            if row["threads"] == t:
                row["frame_over_nanotrack"] = row["frame_median_ms"] / peer["frame_median_ms"] if peer else None

    cfg = model.cfg
    peaks = {t: {"fp32_gflops": gemm_peak_gops(False, t), "int8_gops": gemm_peak_gops(True, t)} for t in counts}
    ceiling = {}
    for cached in (False, True):
        flops = frame_macs(cfg, cached).flops
        ceiling["cached" if cached else "full"] = {
            "gflops_per_frame": flops / 1e9,
            "fp32_ms": {str(t): flops / (peaks[t]["fp32_gflops"] * 1e9) * 1e3 for t in counts},
            "int8_ms": {str(t): flops / (peaks[t]["int8_gops"] * 1e9) * 1e3 for t in counts}}
    for row in engines:
        row_cfg = row.pop("cfg", None) or cfg
        flops = frame_macs(row_cfg, bool(row.get("cached"))).flops
        peak = peaks[row["threads"]]
        floor = flops / ((peak["int8_gops"] if row.get("precision") == "int8" else peak["fp32_gflops"]) * 1e9) * 1e3
        row["flop_ceiling_ms"] = floor
        row["x_over_flop_ceiling"] = row["median_ms"] / floor if row["median_ms"] is not None else None
        if profile_report and row["name"] == profile_report["engine"] and row["threads"] == counts[0]:
            profile_report["flop_ceiling_ms"] = floor
    return {"baseline": BASELINE, "variant": cfg.name, "threads": counts, "rounds": rounds, "pace_fps": pace_fps,
            "sequences": [c[0] for c in clips],
            "frames": sum(len(c[1]) - 1 for c in clips), "engines": engines, "skipped": skipped,
            "machine_peak": {str(t): peaks[t] for t in counts}, "flop_ceiling": ceiling, "profile": profile_report}


def _f(value, fmt: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, fmt)


def format_profile(prof: dict) -> list[str]:
    """Shares of the profiled run, scaled to the engine's unprofiled network median (the profiler
    itself slows every kernel a little, so its absolute times run high)."""
    total = prof["total_ms"] or 1.0
    scale = prof["net_median_ms"] / total
    lines = ["", f"Where the time goes: {prof['engine']} ({_threads(prof.get('threads', 1))}), per-frame "
             f"{prof['graph']} graph, onnxruntime profiler "
             f"over {prof['runs']} frames; ms scaled to its network median {prof['net_median_ms']:.1f} ms "
             f"(FLOP ceiling {_f(prof.get('flop_ceiling_ms'), '.1f')} ms).", "",
             "| part | share % | ms/frame |", "|---|---|---|"]
    parts = list(prof["by_category_ms"].items()) + [("overhead (no kernel: scheduling, thread wake-ups, copies)",
                                                     prof["overhead_ms"])]
    for name, ms in parts:
        lines.append(f"| {name} | {100 * ms / total:.1f} | {ms * scale:.2f} |")
    top = ", ".join(f"{op} {100 * ms / total:.0f}%" for op, ms in list(prof["by_op_ms"].items())[:6])
    return lines + ["", f"Top op types: {top}."]


def _threads(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def _threads_list(counts: list[int]) -> str:
    return " and ".join(map(str, counts)) + (" thread" if counts == [1] else " threads")


def format_table(report: dict) -> str:
    """The report as one markdown table (a row per engine and thread count) and its notes."""
    head = ("| engine | threads | net median ms | net p90 ms | frame median ms | FPS | frame / NanoTrack | RSS MB "
            "| size MB | speed-up | x FLOP ceiling | frame / net | AUC % | P@20 % | mean IoU vs fp32 | AUC delta |")
    lines = [head, "|" + "---|" * 16]
    for r in report["engines"]:
        lines.append(f"| {r['name']} | {r['threads']} | {_f(r['median_ms'], '.1f')} | {_f(r['p90_ms'], '.1f')} | "
                     f"{r['frame_median_ms']:.1f} | {r['fps']:.1f} | {_f(r.get('frame_over_nanotrack'), '.2f')} | "
                     f"{_f(r.get('rss_mb') or None, '.0f')} | "
                     f"{_f(r['size_mb'], '.1f')} | {r['speedup_vs_baseline']:.2f}x | "
                     f"{_f(r['x_over_flop_ceiling'], '.2f')} | "
                     f"{_f(r['frame_median_ms'] / r['median_ms'] if r['median_ms'] else None, '.2f')} | "
                     f"{_f(r.get('auc'), '.1f', 100)} | "
                     f"{_f(r.get('precision_20px'), '.1f', 100)} | {_f(r['mean_iou_vs_fp32'], '.3f')} | "
                     f"{_f(r['auc_delta'], '+.2f', 100)} |")
    counts, ceil = report["threads"], report["flop_ceiling"]
    peaks = "; ".join(f"{_threads(t)}: fp32 {p['fp32_gflops']:.0f} GFLOP/s, int8 {p['int8_gops']:.0f} GOP/s"
                      for t, p in ((t, report["machine_peak"][str(t)]) for t in counts))
    full, cached = ceil["full"], ceil["cached"]
    ceilings = "; ".join(f"{_threads(t)}: full {full['fp32_ms'][str(t)]:.1f} ms fp32 / "
                         f"{full['int8_ms'][str(t)]:.1f} ms int8, cached {cached['fp32_ms'][str(t)]:.1f}"
                         f" / {cached['int8_ms'][str(t)]:.1f} ms" for t in counts)
    lines += ["", f"MixFormerV2-{report['variant']}, {_threads_list(counts)}, {report['frames']} "
              f"frames of {', '.join(report['sequences'])}. Baseline: {report['baseline']} (templates re-encoded "
              "every frame).",
              f"Machine GEMM peak (onnxruntime, measured now), {peaks}. Network FLOPs per frame: "
              f"full {ceil['full']['gflops_per_frame']:.2f} G, cached {ceil['cached']['gflops_per_frame']:.2f} G "
              f"-> ceiling at {ceilings}.",
              "speed-up = baseline frame median / engine frame median (same thread count); frame / NanoTrack = "
              "whole-frame median / NanoTrack's at the same thread count, in this run; x FLOP ceiling = network "
              "median / ceiling (1.0 = the machine's GEMM peak); frame / net = whole-frame median / network median "
              "(crop, normalise and box decoding on top of the network). AUC and P@20: against the ground truth "
              "of these frames. "
              "The default model and NanoTrack are not built from the benched checkpoint (no IoU/AUC delta "
              "against it); NanoTrack's network call is inside OpenCV, so it has a whole-frame time only."]
    if report.get("pace_fps"):
        fps = report["pace_fps"]
        lines.append(f"Frames paced at {fps:g} FPS, as from a camera: each starts 1/{fps:g} s after the previous "
                     "one, so inference threads go idle between frames and must wake for each.")
    if report.get("rounds", 1) > 1:
        lines.append(f"Engines took turns over {report['rounds']} rounds (the baseline ran once per thread count); "
                     "each time is the median over rounds.")
    ratios = []
    for t in counts:
        rows = [r for r in report["engines"] if r["threads"] == t and r.get("frame_over_nanotrack") is not None
                and not r["name"].startswith("nanotrack") and r["name"] != report["baseline"]]
        if rows:
            ratios.append(f"{_threads(t)}: " + ", ".join(f"{r['name']} {r['frame_over_nanotrack']:.2f}x"
                                                         for r in rows))
    if ratios:
        lines.append(f"Whole frame over NanoTrack's (same frames, same run), {'; '.join(ratios)}.")
    if report.get("profile"):
        lines += format_profile(report["profile"])
    for name, why in report["skipped"].items():
        lines.append(f"not run: {name}: {why}")
    return "\n".join(lines)


def plot_png(report: dict, path: str) -> None:
    """Latency (x) against accuracy retention (y), drawn with OpenCV (no plotting dependency)."""
    import cv2

    W, H, m = 900, 520, 70
    img = np.full((H, W, 3), 255, np.uint8)
    rows = report["engines"]
    rows = [r for r in rows if r["mean_iou_vs_fp32"] is not None]
    xmax = max(r["frame_median_ms"] for r in rows) * 1.1
    ymin = min(min(r["mean_iou_vs_fp32"] for r in rows), 0.9) - 0.02

    def to_px(ms, v):
        return (int(m + ms / xmax * (W - 2 * m)), int(H - m - (v - ymin) / (1.0 - ymin + 0.01) * (H - 2 * m)))

    cv2.line(img, (m, H - m), (W - m, H - m), (0, 0, 0), 1)
    cv2.line(img, (m, m), (m, H - m), (0, 0, 0), 1)
    cv2.putText(img, "frame median ms", (W // 2 - 60, H - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "mean IoU vs fp32", (5, m - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    for k in range(5):
        ms = xmax * k / 4
        cv2.putText(img, f"{ms:.0f}", (to_px(ms, ymin)[0] - 10, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
    for r in rows:
        pt = to_px(r["frame_median_ms"], r["mean_iou_vs_fp32"])
        cv2.circle(img, pt, 5, (200, 60, 0), -1)
        label = r["name"] + (f" ({_threads(r['threads'])})" if len(report["threads"]) > 1 else "")
        cv2.putText(img, label, (pt[0] + 6, pt[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1)
    cv2.imwrite(path, img)
