"""TFLite / LiteRT export and engine (skipped where litert-torch / ai-edge-litert are absent)."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install 'edge-track[tflite-export]')")
pytest.importorskip("litert_torch", reason="needs litert-torch (pip install 'edge-track[tflite-export]')")

from conftest import make_clip_frames  # noqa: E402
from edge.engines import open_engine  # noqa: E402
from edge.engines.tflite_metadata import read_metadata  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from edge.trackers.mixformer import MixFormerTracker  # noqa: E402
from train.export.onnx import export_onnx  # noqa: E402
from train.export.tflite import export_tflite  # noqa: E402
from train.models.model import build_model  # noqa: E402
from train.models.presets import get_preset  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = build_model(get_preset("tiny"), seed=2)
    work = tmp_path_factory.mktemp("tfl")
    return model, export_onnx(model, str(work / "t.onnx")).path, work


def test_fp32_tflite_tracks_like_onnx(tiny):
    model, onnx_path, work = tiny
    report = export_tflite(model, str(work / "t.tflite"), checkpoint_sha256="ef" * 32)
    assert report.box_max_abs_diff <= 1e-4
    engine = open_engine(report.path)
    assert engine.name == "tflite-fp32-cached" and engine.meta.checkpoint_sha256 == "ef" * 32
    frames, gt = make_clip_frames(10)
    trackers = [MixFormerTracker(engine), MixFormerTracker(open_engine(onnx_path))]
    for t in trackers:
        t.init(frames[0], gt[0])
    for frame in frames[1:]:
        a, b = (t.update(frame) for t in trackers)
        assert np.allclose(a.box, b.box, atol=1e-3)


def test_dynamic_int8_tflite(tiny):
    model, _, work = tiny
    report = export_tflite(model, str(work / "q.tflite"), quantize="dynamic-int8")
    engine = open_engine(report.path)
    assert engine.meta.precision == "int8" and report.box_max_abs_diff < 5e-2


def test_metadata_reader_and_bad_files(tiny, tmp_path):
    _, _, work = tiny
    data = open(work / "t.tflite", "rb").read()
    assert b'"preset": "tiny"' in read_metadata(data)["edge_track"]
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError):
        open_engine(str(bad))
