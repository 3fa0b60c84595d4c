"""`edge-track bench`: NanoTrack as a peer row on the same frames, and the default model's row
with its accuracy against the ground truth beside its speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import NANOTRACK_DIR, shared_path, square_sequence


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return square_sequence(tmp_path_factory.mktemp("bench_seqs"), n=14)


def test_worker_measures_nanotrack_whole_frame_time_without_torch(clip_dir, tmp_path):
    nano = shared_path("models", "opencv")
    out = tmp_path / "nano.json"
    proc = subprocess.run([sys.executable, "-m", "edge.bench.engine_timing", "--peer", "nanotrack",
                           "--nanotrack-dir", nano, "--sequences", clip_dir, "--threads", "1", "--pace", "500",
                           "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["median_ms"] is None            # OpenCV hides its network call
    assert result["frame_median_ms"] > 0 and result["fps"] == pytest.approx(1e3 / result["frame_median_ms"])
    assert len(result["boxes"]["square"]) == 14
    assert result["torch_imported"] is False


def test_worker_runs_the_upstream_nanotrack_loop_without_torch(clip_dir, tmp_path):
    nano = shared_path("models", "nanotrack_v3")
    out = tmp_path / "nano.json"
    proc = subprocess.run([sys.executable, "-m", "edge.bench.engine_timing", "--peer", "nanotrack-upstream",
                           "--nanotrack-dir", nano, "--sequences", clip_dir, "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["frame_median_ms"] > 0 and len(result["boxes"]["square"]) == 14
    assert result["torch_imported"] is False


def test_worker_without_nanotrack_files_is_one_line_error(clip_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edge.bench.engine_timing", "--peer", "nanotrack", "--nanotrack-dir",
                           str(tmp_path), "--sequences", clip_dir, "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "NanoTrack model file not found" in proc.stderr


def test_bench_has_nanotrack_and_default_model_rows_with_ground_truth_auc(clip_dir):
    pytest.importorskip("torch")
    shared_path("models", "opencv")
    from edge.sample import BUNDLED_MODEL

    if not os.path.isfile(BUNDLED_MODEL):
        pytest.skip("no bundled model in this checkout")
    from edge.bench.report import format_table
    from train.bench.pytorch_rows import run_bench
    from train.models.model import build_model
    from train.models.presets import get_preset

    report = run_bench(build_model(get_preset("tiny"), seed=0), "", clip_dir, threads=1, max_frames=14,
                       only=["nanotrack", "bundled", "default"], nanotrack_dir=NANOTRACK_DIR, log=lambda m: None,
                       upstream_nanotrack=(NANOTRACK_DIR,))
    rows = {r["name"]: r for r in report["engines"]}
    nano = rows["nanotrack (opencv)"]
    # A row for every bundled tracker, the default (by the catalog's rule) marked.
    from edge.trackers.catalog import load_catalog

    catalog = load_catalog()
    assert f"default {catalog.default().name} (onnxruntime)" in rows
    default = next(r for name, r in rows.items() if name.startswith("bundled mixformerv2-nanostem224-int8"))
    for row in (nano, default):
        assert row["frame_median_ms"] > 0 and 0.0 <= row["auc"] <= 1.0
        assert row["mean_iou_vs_fp32"] is None    # not built from the benched checkpoint
    # Both trackers follow an unoccluded textured square.
    assert nano["auc"] > 0.4 and default["auc"] > 0.4
    assert nano["x_over_flop_ceiling"] is None and default["x_over_flop_ceiling"] > 0
    # The only INT8 onnxruntime row is the default model: it is the one profiled.
    assert report["profile"]["engine"] == default["name"]
    assert report["profile"]["by_category_ms"]["gemm"] > 0
    # NanoTrack's own loop on onnxruntime, V2 from the same files: timed like the others and
    # compared with OpenCV's row, which stays the one every ratio is taken against.
    upstream = rows["upstream nanotrack-v2 (onnxruntime)"]
    assert upstream["auc"] > 0.4 and upstream["mean_iou_vs_fp32"] is None
    assert upstream["frame_over_nanotrack"] == pytest.approx(upstream["frame_median_ms"] / nano["frame_median_ms"])
    assert nano["frame_over_nanotrack"] == pytest.approx(1.0)
    table = format_table(report)
    assert "| nanotrack (opencv) | 1 | - | - |" in table
    assert "Where the time goes" in table and "| gemm |" in table


def test_bench_names_why_nanotrack_is_missing(monkeypatch, tmp_path):
    import edge.bench.rows as rows_module

    monkeypatch.setattr(rows_module, "find_nanotrack_dir", lambda: None)   # no ../shared, no $EDGE_TRACK_...
    skipped = {}
    rows = rows_module.runtime_rows(skipped)
    assert all(r.peer in (None, "nanotrack-upstream") for r in rows)   # no OpenCV row, the bundled ones stay
    assert "--nanotrack-dir" in skipped["nanotrack"]


def test_merge_rounds_takes_medians_and_keeps_the_first_boxes():
    from edge.bench.session import merge_rounds

    runs = [{"median_ms": m, "p90_ms": m + 1, "frame_median_ms": m + 0.5, "frame_p90_ms": m + 2, "fps": 0.0,
             "rss_mb": rss, "boxes": {"a": [[k, 0, 1, 1]]}}
            for k, (m, rss) in enumerate([(10.0, 50.0), (4.0, 70.0), (6.0, 60.0)])]
    merged = merge_rounds(runs)
    assert merged["median_ms"] == 6.0 and merged["frame_median_ms"] == 6.5 and merged["frame_p90_ms"] == 8.0
    assert merged["fps"] == pytest.approx(1e3 / 6.5) and merged["rss_mb"] == 70.0
    assert merged["boxes"] == {"a": [[0, 0, 1, 1]]} and merged["rounds"] == 3
    peer = merge_rounds([{"median_ms": None, "p90_ms": None, "frame_median_ms": 3.0, "frame_p90_ms": 4.0,
                          "fps": 0.0, "rss_mb": None, "boxes": {}}])
    assert peer["median_ms"] is None and peer["frame_median_ms"] == 3.0


def test_bench_rounds_alternate_engines_and_print_ratios_to_nanotrack(clip_dir, tiny_model_path, monkeypatch, tmp_path):
    pytest.importorskip("torch")
    import train.bench.pytorch_rows as bench
    from edge.bench import session
    from edge.bench.report import format_table
    from edge.errors import ConfigError
    from train.models.model import build_model
    from train.models.presets import get_preset

    calls = []
    frame_ms = {"nanotrack (opencv)": [4.0, 40.0, 4.0], "default": [6.0, 60.0, 6.0]}   # round 2: a slow minute

    def fake_worker(path, cand, sequences, threads, max_frames, profile=False, pace_fps=None):
        key = cand.name if cand.name.startswith("nanotrack") else "default"
        ms = frame_ms[key][sum(1 for c in calls if c == key)]
        calls.append(key)
        return {"median_ms": None if key != "default" else ms - 1, "p90_ms": None, "frame_median_ms": ms,
                "frame_p90_ms": ms, "fps": 1e3 / ms, "rss_mb": 1.0, "boxes": {"square": [[120, 90, 40, 32]] * 14}}

    monkeypatch.setattr(session, "run_worker", fake_worker)
    nano_dir = tmp_path / "nano"
    nano_dir.mkdir()
    report = bench.run_bench(build_model(get_preset("tiny"), seed=0), "", clip_dir, threads=1, max_frames=14,
                             only=["nanotrack", "default-model"], nanotrack_dir=str(nano_dir),
                             default_model=tiny_model_path, log=lambda m: None, profile=False, rounds=3)
    assert calls == ["default", "nanotrack (opencv)"] * 3 or calls == ["nanotrack (opencv)", "default"] * 3
    rows = {r["name"].split(" ")[0]: r for r in report["engines"]}
    assert rows["nanotrack"]["frame_median_ms"] == 4.0 and rows["default-model-fp32"]["frame_median_ms"] == 6.0
    table = format_table(report)
    assert "over 3 rounds" in table and "default-model-fp32 (tiny.onnx) 1.50x" in table
    with pytest.raises(ConfigError, match="at least 1"):
        bench.run_bench(build_model(get_preset("tiny"), seed=0), "", clip_dir, rounds=0, log=lambda m: None)


@pytest.mark.parametrize("pace", ["0", "-3", "inf", "nan"])
def test_worker_refuses_a_pace_that_is_not_a_frame_rate(clip_dir, tmp_path, pace):
    proc = subprocess.run([sys.executable, "-m", "edge.bench.engine_timing", "--peer", "kcf", "--sequences", clip_dir,
                           "--pace", pace, "--out", str(tmp_path / "x.json")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: --pace must be a positive frame rate, got {float(pace)}"]


def test_pacer_holds_frames_to_the_camera_schedule_and_never_bursts_after_a_late_one():
    from edge.bench.engine_timing import Pacer

    now, slept = [0.0], []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    pacer = Pacer(20.0, clock=lambda: now[0], sleep=sleep)     # 50 ms slots
    pacer.wait()                       # the first frame starts the schedule
    now[0] += 0.010                    # a 10 ms frame
    pacer.wait()
    assert slept == [0.04] and now[0] == pytest.approx(0.05)
    now[0] += 0.120                    # a frame longer than two slots
    pacer.wait()                       # late: starts at once, the schedule restarts from here
    assert slept == [0.04]
    now[0] += 0.010
    pacer.wait()
    assert slept == [0.04, 0.04]
    pacer.restart()                    # a new clip: no waiting for the old schedule
    pacer.wait()
    assert slept == [0.04, 0.04]
    free = Pacer(None, clock=lambda: 0.0, sleep=lambda s: pytest.fail("an unpaced bench never sleeps"))
    free.wait()
    free.wait()


def test_bench_pace_reaches_every_worker_and_the_report(clip_dir, tiny_model_path, monkeypatch, tmp_path):
    pytest.importorskip("torch")
    import train.bench.pytorch_rows as bench
    from edge.bench import session
    from edge.bench.report import format_table
    from edge.errors import ConfigError
    from train.models.model import build_model
    from train.models.presets import get_preset

    paces = []

    def fake_worker(path, cand, sequences, threads, max_frames, profile=False, pace_fps=None):
        paces.append(pace_fps)
        return {"median_ms": 1.0, "p90_ms": 1.0, "frame_median_ms": 2.0, "frame_p90_ms": 2.0, "fps": 500.0,
                "rss_mb": 1.0, "boxes": {"square": [[120, 90, 40, 32]] * 14}}

    monkeypatch.setattr(session, "run_worker", fake_worker)
    model = build_model(get_preset("tiny"), seed=0)
    report = bench.run_bench(model, "", clip_dir, threads=1, max_frames=14, only=["default-model"],
                             default_model=tiny_model_path, log=lambda m: None, profile=False, pace_fps=400.0)
    assert paces == [400.0] and report["pace_fps"] == 400.0
    assert "paced at 400 FPS" in format_table(report)
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(ConfigError, match="positive frame rate"):
            bench.run_bench(model, "", clip_dir, pace_fps=bad, log=lambda m: None)


def test_one_bench_run_times_every_row_at_each_thread_count_against_nanotrack(clip_dir, tiny_model_path,
                                                                              monkeypatch, tmp_path):
    pytest.importorskip("torch")
    import train.bench.pytorch_rows as bench
    from edge.bench import session
    from edge.bench.report import format_table
    from edge.cli.main import main
    from train.models.model import build_model
    from train.models.presets import get_preset

    calls = []
    frame_ms = {("nanotrack", 1): 4.0, ("nanotrack", 2): 3.0, ("default", 1): 6.0, ("default", 2): 3.3}

    def fake_worker(path, cand, sequences, threads, max_frames, profile=False, pace_fps=None):
        key = ("nanotrack" if cand.name.startswith("nanotrack") else "default", threads)
        calls.append(key)
        ms = frame_ms[key]
        return {"median_ms": None if key[0] == "nanotrack" else ms - 1, "p90_ms": None, "frame_median_ms": ms,
                "frame_p90_ms": ms, "fps": 1e3 / ms, "rss_mb": 1.0, "boxes": {"square": [[120, 90, 40, 32]] * 14}}

    monkeypatch.setattr(session, "run_worker", fake_worker)
    nano_dir = tmp_path / "nano"
    nano_dir.mkdir()
    report = bench.run_bench(build_model(get_preset("tiny"), seed=0), "", clip_dir, threads=[1, 2], max_frames=14,
                             only=["nanotrack", "default-model"], nanotrack_dir=str(nano_dir),
                             default_model=tiny_model_path, log=lambda m: None, profile=False, rounds=2)
    # Engines and thread counts take turns in every round.
    assert sorted(calls[:4]) == sorted(frame_ms) and calls[4:] == calls[:4]
    assert report["threads"] == [1, 2]
    rows = {(r["name"].split(" ")[0], r["threads"]): r for r in report["engines"]}
    assert set(rows) == {(n, t) for n in ("pytorch-fp32-full", "nanotrack", "default-model-fp32") for t in (1, 2)}
    assert rows["default-model-fp32", 1]["frame_over_nanotrack"] == pytest.approx(1.5)
    assert rows["default-model-fp32", 2]["frame_over_nanotrack"] == pytest.approx(1.1)
    assert rows["nanotrack", 2]["frame_over_nanotrack"] == pytest.approx(1.0)
    table = format_table(report)
    assert table.count("| default-model-fp32 (tiny.onnx) |") == 2               # one table, a row per count
    assert "| default-model-fp32 (tiny.onnx) | 2 | 2.3 | - | 3.3 | 303.0 | 1.10 |" in table
    assert ("1 thread: default-model-fp32 (tiny.onnx) 1.50x; 2 threads: default-model-fp32 (tiny.onnx) 1.10x"
            in table)
    # The command line takes the list; a count below 1 is a one-line usage error.
    with pytest.raises(SystemExit) as info:
        main(["bench", "--threads", "1,0"])
    assert info.value.code == 2
    seen = []
    monkeypatch.setattr(session, "run_bench", lambda *a, **k: seen.append(k["threads"]) or report)
    assert main(["bench", "--variant", "tiny", "--threads", "1,2", "--sequences", clip_dir]) == 0
    assert seen == [[1, 2]]


def test_what_libraries_print_while_models_are_built_stays_out_of_the_output(clip_dir, tiny_model_path,
                                                                             monkeypatch, capfd):
    pytest.importorskip("torch")
    import train.bench.pytorch_rows as bench
    from edge.bench import session
    from edge.bench.rows import Row
    from train.models.model import build_model
    from train.models.presets import get_preset

    def noisy_build(work):
        # As LiteRT, ai-edge-quantizer and torchao do: C++ INFO lines, progress bars, Python prints.
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(1, b"Generating Quantization Parameters:: 100%|##########| 398/398\n")
        print("[torch.onnx] Obtain model graph")
        return tiny_model_path

    def noisy_candidates(*args):
        os.write(2, b"Failed to load torchao/_C_mxfp8.so\n")
        return [Row("onnxruntime-int8-noisy", "int8", True, noisy_build)], {}

    def fake_worker(path, cand, sequences, threads, max_frames, profile=False, pace_fps=None):
        return {"median_ms": 1.0, "p90_ms": 1.0, "frame_median_ms": 2.0, "frame_p90_ms": 2.0, "fps": 500.0,
                "rss_mb": 1.0, "boxes": {"square": [[120, 90, 40, 32]] * 14}}

    monkeypatch.setattr(bench, "candidates", noisy_candidates)
    monkeypatch.setattr(session, "run_worker", fake_worker)
    report = bench.run_bench(build_model(get_preset("tiny"), seed=0), "", clip_dir, threads=1, max_frames=14,
                             only=["noisy"], log=lambda m: print(m, file=sys.stderr), profile=False)
    assert [r["name"] for r in report["engines"]][1:] == ["onnxruntime-int8-noisy"]
    out, err = capfd.readouterr()
    assert out == "", out
    assert "onnxruntime-int8-noisy, 1 thread: 2.0 ms/frame" in err
    for noise in ("XNNPACK", "Quantization Parameters", "torch.onnx", "torchao"):
        assert noise not in err, err

    # A build that fails unexpectedly: what the libraries said is shown after all.
    from edge.bench.quiet import libraries_quiet

    with pytest.raises(RuntimeError):
        with libraries_quiet():
            os.write(2, b"converter: unsupported op Foo\n")
            raise RuntimeError("boom")
    assert "unsupported op Foo" in capfd.readouterr().err
