"""Every engine that installs here runs the same inputs as fp32 and agrees within stated bounds."""

import os

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from conftest import make_clip_frames, shared_path, write_sequence  # noqa: E402
from edge.cli.main import main  # noqa: E402
from edge.engines import open_engine  # noqa: E402
from edge.errors import EdgeTrackError, ModelError, SourceError  # noqa: E402
from edge.trackers.crop import sample_target  # noqa: E402
from edge.trackers.preprocess import Normalizer  # noqa: E402
from support.int8_bounds import int8_reference  # noqa: E402
from train.export.int8_inputs import int8_feeds  # noqa: E402
from train.export.quantize import convert_fp16, int8_kernel_counts, quantize_model  # noqa: E402


def crop_boxes(engine, feeds):
    """Run each feed; (cx, cy, w, h) in pixels of the search crop.

    Seeded random weights predict near-degenerate boxes, so engines are compared by the box error
    in crop pixels rather than IoU (the bench reports IoU of the tracked, clipped boxes).
    """
    size = engine.meta.search_size
    out = []
    for feed in feeds:
        engine.set_templates(feed["template"], feed["online_template"])
        out.append(engine.run(feed["search"]).box_cxcywh * size)
    return np.asarray(out)


@pytest.fixture(scope="module")
def real_feeds(s_model):
    _, path, _ = s_model
    return int8_feeds(shared_path("data", "sequences"), open_engine(path).meta, samples=24, seed=5)


def test_static_int8_agrees_with_fp32_on_real_crops(s_model, real_feeds, tmp_path):
    _, path, _ = s_model
    calib = real_feeds[:16]
    held_out = real_feeds[16:]
    report = quantize_model(path, str(tmp_path / "s-int8.onnx"), feeds=calib)
    assert report.mode == "static-minmax" and report.samples == 16 and report.step_path
    counts = int8_kernel_counts(report.step_path)
    assert counts.get("QuantizeLinear", 0) > 10 and counts.get("DequantizeLinear", 0) > 10
    int8, fp32 = open_engine(report.path), open_engine(path)
    assert int8.name == "onnxruntime-int8-cached" and int8.meta.precision == "int8"
    # The quantised graph itself, simulated in float (the same on every CPU), against fp32, in
    # pixels of the 224 px search crop; measured with seeded weights: mean 0.27, max 0.85.
    simulated, allowed = int8_reference(report.path, held_out)
    error_px = np.abs(simulated * 224 - crop_boxes(fp32, held_out))
    assert error_px.mean() < 0.5 and error_px.max() < 2.0, error_px
    # The INT8 kernels against that simulation: within a few quantisation steps (tests/support/int8_bounds.py;
    # test_training's QAT test shows a wrong scale breaking the bound). Measured on AVX2 without
    # VNNI (u8s8 saturation): 1.9 px, allowed 16 px.
    kernel_px = np.abs(crop_boxes(int8, held_out) - simulated * 224)
    assert kernel_px.max() <= allowed * 224, (kernel_px.max(), allowed * 224)
    assert os.path.getsize(report.path) < 0.4 * os.path.getsize(path)


def test_dynamic_int8_and_fp16_agree(s_model, real_feeds, tmp_path):
    _, path, _ = s_model
    fp32 = open_engine(path)
    reference = crop_boxes(fp32, real_feeds[:6])
    dyn = quantize_model(path, str(tmp_path / "dyn.onnx"))
    assert dyn.mode == "dynamic"
    # The patch embedding is an integer GEMM like the rest (a ConvInteger costs 12 % of the frame).
    kinds = {n.op_type for n in onnx.load(dyn.step_path).graph.node}
    assert "ConvInteger" not in kinds and "Conv" not in kinds, kinds
    error_px = np.abs(crop_boxes(open_engine(dyn.path), real_feeds[:6]) - reference)
    assert error_px.mean() < 0.5 and error_px.max() < 2.0, error_px   # measured: mean 0.17, max 0.47
    half = convert_fp16(path, str(tmp_path / "fp16.onnx"))
    engine = open_engine(half.path)
    assert engine.meta.precision == "fp16"
    assert np.abs(crop_boxes(engine, real_feeds[:6]) - reference).max() < 0.5  # pixels of a 224 crop


def test_calibration_inputs_are_the_trackers_crops(s_model, tmp_path):
    """Annotated sequences: the search input equals the runtime crop around the previous box."""
    _, path, _ = s_model
    meta = open_engine(path).meta
    frames, gt = make_clip_frames(10, size=(320, 240), box=(100, 80, 40, 30))
    folder = write_sequence(str(tmp_path / "seq"), frames, gt)
    feeds = int8_feeds(folder, meta, samples=4, seed=0)
    normalize = Normalizer(meta)
    template, _ = sample_target(frames[0], gt[0], meta.template_factor, meta.template_size)
    assert all(np.array_equal(f["template"], normalize(template)) for f in feeds)
    candidates = [normalize(sample_target(frames[k], gt[k - 1], meta.search_factor, meta.search_size)[0])
                  for k in range(1, 10)]
    for feed in feeds:
        assert any(np.array_equal(feed["search"], c) for c in candidates)


def test_npz_and_video_calibration_sources(s_model, tmp_path):
    import cv2

    _, path, _ = s_model
    meta = open_engine(path).meta
    frames, _ = make_clip_frames(12, size=(320, 240))
    video = str(tmp_path / "v.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for f in frames:
        writer.write(f)
    writer.release()
    feeds = int8_feeds(video, meta, samples=5)
    assert len(feeds) == 5 and feeds[0]["search"].shape == (1, 3, 224, 224)
    npz = str(tmp_path / "rec.npz")
    np.savez(npz, **{k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]})
    again = int8_feeds(npz, meta)
    assert len(again) == 5 and np.array_equal(again[3]["search"], feeds[3]["search"])


def test_calibration_source_without_frames_is_an_error(s_model, tmp_path):
    _, path, _ = s_model
    meta = open_engine(path).meta
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError):
        int8_feeds(str(tmp_path / "empty"), meta)
    bad = tmp_path / "bad.npz"
    np.savez(bad, template=np.zeros((2, 3, 10, 10), np.float32))
    with pytest.raises(EdgeTrackError, match="lacks 'online_template'"):
        int8_feeds(str(bad), meta)


def test_quantize_command_errors_are_one_line(tmp_path, tiny_model_path, capsys):
    import onnx

    (tmp_path / "empty").mkdir()
    for argv in (["--calib", str(tmp_path / "empty")], ["--calib", str(tmp_path / "missing.mp4")]):
        assert main(["quantize", "--model", tiny_model_path, "--output", str(tmp_path / "q.onnx"), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err
    graph = onnx.load(tiny_model_path)
    del graph.metadata_props[:]
    bare = str(tmp_path / "bare.onnx")
    onnx.save(graph, bare)
    assert main(["quantize", "--model", bare, "--output", str(tmp_path / "q.onnx")]) == 2
    assert "no edge-track metadata" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "q.onnx")


def test_quantize_command_static(tmp_path, tiny_model_path, capsys):
    frames, gt = make_clip_frames(8)
    folder = write_sequence(str(tmp_path / "seq"), frames, gt)
    out = str(tmp_path / "q.onnx")
    assert main(["quantize", "--model", tiny_model_path, "--calib", folder, "--output", out,
                 "--method", "percentile", "--samples", "6"]) == 0
    assert "static-percentile, 6 calibration samples" in capsys.readouterr().out
    engine = open_engine(out)
    assert engine.cached and engine.meta.precision == "int8"


def test_quantizing_twice_is_refused(tmp_path, tiny_model_path):
    first = quantize_model(tiny_model_path, str(tmp_path / "a.onnx"))
    with pytest.raises(ModelError, match="already int8"):
        quantize_model(first.path, str(tmp_path / "b.onnx"))


def test_bench_runs_engines_in_runtime_only_processes(tmp_path, capsys):
    root = tmp_path / "seqs"
    frames, gt = make_clip_frames(8)
    write_sequence(str(root / "clip"), frames, gt)
    js = str(tmp_path / "bench.json")
    png = str(tmp_path / "bench.png")
    # A QAT export measured beside post-training INT8 (the same seeded tiny weights as the bench's).
    import torch

    from train.export.qat import export_qat_onnx, init_ranges, prepare_qat
    from train.models.model import build_model
    from train.models.presets import get_preset

    qmodel = prepare_qat(build_model(get_preset("tiny"), seed=0))
    g = torch.Generator().manual_seed(0)
    init_ranges(qmodel, [{"template": torch.randn(2, 3, 64, 64, generator=g),
                        "online_template": torch.randn(2, 3, 64, 64, generator=g),
                        "search": torch.randn(2, 3, 128, 128, generator=g)}])
    qat_path = export_qat_onnx(qmodel, str(tmp_path / "qat.onnx")).path
    assert main(["bench", "--variant", "tiny", "--sequences", str(root), "--max-frames", "8",
                 "--engines", "fp32", "int8-dynamic", "default", "--extra-model", qat_path, "--json", js,
                 "--plot", png]) == 0
    import json

    report = json.load(open(js))
    names = [e["name"] for e in report["engines"]]
    assert report["baseline"] == "pytorch-fp32-full" and names[0] == "pytorch-fp32-full"
    assert {"onnxruntime-fp32-full", "onnxruntime-fp32-cached", "onnxruntime-int8-dynamic-cached",
            "onnxruntime-int8 (qat.onnx)"} <= set(names)
    keys = {"name", "median_ms", "p90_ms", "frame_median_ms", "fps", "rss_mb", "size_mb",
            "speedup_vs_baseline", "mean_iou_vs_fp32", "auc_delta"}
    for row in report["engines"]:
        assert keys <= set(row)
        assert row["frame_median_ms"] > 0 and row["speedup_vs_baseline"] > 0
    for row in report["engines"][1:]:
        assert row["torch_imported"] is False and row["rss_mb"] > 0
    fp32_cached = next(r for r in report["engines"] if r["name"] == "onnxruntime-fp32-cached")
    assert fp32_cached["mean_iou_vs_fp32"] > 0.99        # the same network, exported
    assert report["flop_ceiling"]["cached"]["gflops_per_frame"] < report["flop_ceiling"]["full"]["gflops_per_frame"]
    assert any(n.startswith("default ") for n in names)   # the default tracker, by the catalog's rule
    assert report["profile"]["engine"] in {"onnxruntime-int8-dynamic-cached", "onnxruntime-int8 (qat.onnx)"}
    out = capsys.readouterr().out
    assert "| onnxruntime-fp32-cached |" in out and "| frame / net |" in out
    assert os.path.getsize(png) > 1000


def test_flop_count_matches_the_reference_analysis():
    """peers_and_limits.md 4.1 counted these from the official code: S 4.822 / 3.318, B 28.131 / 20.606 GMACs."""
    from train.bench.flops import frame_macs
    from train.models.presets import get_preset

    expected = {("S", False): 4.822, ("S", True): 3.318, ("B", False): 28.131, ("B", True): 20.606}
    for (variant, cached), gmacs in expected.items():
        assert frame_macs(get_preset(variant), cached).total / 1e9 == pytest.approx(gmacs, abs=5e-4)
