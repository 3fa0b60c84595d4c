"""`edge-track bench` in the runtime-only install: torch and onnx unimportable, the bundled trackers timed.

The subprocess tests put a finder in front of sys.meta_path (a sitecustomize on PYTHONPATH, so the
bench's worker processes get it too) that refuses torch and onnx, as a `pip install edge-track`
without the training extra would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, square_sequence

BLOCKER = '''
import importlib.abc
import sys


class _NoTraining(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTraining())
'''


@pytest.fixture(scope="module")
def runtime_env(tmp_path_factory):
    hook = tmp_path_factory.mktemp("no_torch")
    (hook / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hook), REPO] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return square_sequence(tmp_path_factory.mktemp("bench_runtime_seqs"), n=10)


def _bench(env, *args):
    return subprocess.run([sys.executable, "-m", "edge.cli.main", "bench", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_the_blocker_makes_torch_and_onnx_unimportable(runtime_env):
    for module in ("torch", "onnx"):
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                              env=runtime_env)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import onnxruntime, cv2"], capture_output=True, text=True,
                          env=runtime_env)
    assert proc.returncode == 0, proc.stderr


def test_bench_times_every_bundled_tracker_without_torch(runtime_env, clip_dir, tmp_path):
    from edge.trackers.catalog import load_catalog

    catalog = load_catalog()
    installed = [e for e in catalog.entries if e.installed]
    if not installed:
        pytest.skip("no bundled tracker in this checkout")
    js = tmp_path / "bench.json"
    proc = _bench(runtime_env, "--sequences", clip_dir, "--max-frames", "10", "--threads", "1", "--no-profile",
                  "--json", str(js))
    assert proc.returncode == 0, proc.stderr
    assert "training extra" not in proc.stderr          # nothing asked for PyTorch rows
    report = json.loads(js.read_text())
    rows = {r["name"]: r for r in report["engines"]}
    default = catalog.default()
    for entry in installed:
        mark = "default" if entry is default else "bundled"
        row = next(r for name, r in rows.items() if name.startswith(f"{mark} {entry.name}"))
        assert row["frame_median_ms"] > 0 and row["threads"] == 1
        assert row["torch_imported"] is False
        assert f"| {row['name']} | 1 |" in proc.stdout                 # in the printed table too
    assert report["baseline"] is None
    assert "| speed-up |" not in proc.stdout and "| frame / NanoTrack |" in proc.stdout


def test_pytorch_rows_ask_for_the_training_extra_in_one_line_and_the_runtime_rows_still_run(runtime_env, clip_dir):
    proc = _bench(runtime_env, "--sequences", clip_dir, "--max-frames", "6", "--threads", "1", "--no-profile",
                  "--checkpoint", "weights.pth.tar", "--engines", "default")
    assert proc.returncode == 0, proc.stderr
    asks = [line for line in proc.stderr.splitlines() if "training extra" in line]
    assert asks == ["bench: --checkpoint needs the training extra (torch is missing): pip install 'edge-track[train]'"]
    assert "Traceback" not in proc.stderr
    assert "| default " in proc.stdout and "not run: pytorch rows: --checkpoint needs the training extra" in proc.stdout


def test_bench_names_a_bad_option_value_in_one_line(runtime_env, clip_dir):
    proc = _bench(runtime_env, "--sequences", clip_dir, "--threads", "1", "--rounds", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["edge-track: error: --rounds must be at least 1, got 0"]


def test_bench_profiles_the_benched_networks_int8_engine_not_the_faster_default_model():
    from edge.bench.rows import Row
    from edge.bench.session import profile_target

    def row(name, independent=False, engine="onnxruntime"):
        return Row(name, "int8", True, build=None, engine=engine, independent=independent)

    rows = {r.name: r for r in (row("int8-static"), row("int8-dynamic"), row("tflite-int8", engine="tflite"),
                                row("default-model-int8", independent=True))}
    results = [{"name": "pytorch-fp32-full", "precision": None, "median_ms": 90.0},
               {"name": "int8-static", "precision": "int8", "median_ms": 34.0},
               {"name": "int8-dynamic", "precision": "int8", "median_ms": 31.0},
               {"name": "tflite-int8", "precision": "int8", "median_ms": 20.0},
               {"name": "default-model-int8", "precision": "int8", "median_ms": 5.0}]
    assert profile_target(results, rows)["name"] == "int8-dynamic"
    # Only the default model among the INT8 rows (bench --engines default): it is profiled.
    assert profile_target([results[0], results[4]], rows)["name"] == "default-model-int8"
    assert profile_target(results[:1], rows) is None


def test_runtime_rows_take_a_bundled_name_or_a_folder_as_the_chosen_model(tmp_path):
    from edge.bench.rows import runtime_rows
    from edge.errors import ConfigError
    from edge.trackers.catalog import load_catalog

    nano = next((e for e in load_catalog().entries if e.family == "nanotrack" and e.installed), None)
    if nano is None:
        pytest.skip("no bundled NanoTrack in this checkout")
    skipped = {}
    rows = runtime_rows(skipped, model=nano.name, nanotrack_dir=str(tmp_path))
    assert [(r.name, r.peer) for r in rows] == [("default-model nanotrack (onnxruntime)", "nanotrack-upstream"),
                                                ("nanotrack (opencv)", "nanotrack")]
    assert rows[0].build(None) == nano.path
    with pytest.raises(ConfigError, match="not a bundled tracker"):
        runtime_rows({}, model="no-such-tracker")


def test_vittrack_rows_are_skipped_with_their_reason_when_the_peer_cannot_run(tmp_path):
    from edge.bench.rows import vittrack_rows

    skipped = {}
    assert vittrack_rows(str(tmp_path / "missing.onnx"), skipped) == []
    assert skipped["vittrack"]


def test_table_without_a_baseline_leaves_out_the_columns_only_pytorch_fills():
    from edge.bench.report import format_table

    row = {"name": "default x (onnxruntime)", "threads": 1, "median_ms": None, "p90_ms": None,
           "frame_median_ms": 5.0, "fps": 200.0, "frame_over_nanotrack": 0.5, "rss_mb": 80.0, "size_mb": 3.0,
           "auc": 0.5, "precision_20px": 0.75, "speedup_vs_baseline": None, "x_over_flop_ceiling": None,
           "mean_iou_vs_fp32": None, "auc_delta": None}
    report = {"baseline": None, "title": None, "threads": [1], "frames": 9, "sequences": ["square"],
              "engines": [row], "skipped": {"vittrack": "no file"}, "profile": None, "rounds": 1}
    table = format_table(report)
    assert table.splitlines()[0] == ("| engine | threads | net median ms | net p90 ms | frame median ms | FPS | "
                                     "frame / NanoTrack | RSS MB | size MB | frame / net | AUC % | P@20 % |")
    assert "| default x (onnxruntime) | 1 | - | - | 5.0 | 200.0 | 0.50 | 80 | 3.0 | - | 50.0 | 75.0 |" in table
    assert "Whole frame over NanoTrack's (same frames, same run), 1 thread: default x (onnxruntime) 0.50x." in table
    assert "not run: vittrack: no file" in table
