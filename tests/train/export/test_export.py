"""Export -> onnxruntime -> runtime tracker agree with PyTorch; the file describes itself."""

import json

import numpy as np
import pytest

from support.models import assert_refuses_bad_and_missing

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from conftest import make_clip_frames, shared_path  # noqa: E402
from edge.engines import open_engine  # noqa: E402
from edge.engines.model_meta import METADATA_KEY, ModelMeta  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from edge.trackers.mixformer import MixFormerTracker  # noqa: E402
from train.bench.torch_engine import TorchEngine  # noqa: E402
from train.export.onnx import compare_with_torch, export_onnx  # noqa: E402
from train.models.model import build_model  # noqa: E402
from train.models.presets import get_preset  # noqa: E402


def test_s_export_agrees_and_describes_itself(s_model):
    model, path, report = s_model
    assert report.box_max_abs_diff <= 1e-4
    engine = open_engine(path)
    meta = engine.meta
    assert (meta.preset, meta.template_size, meta.search_size, meta.bins) == ("S", 112, 224, 96)
    assert meta.search_factor == 4.4 and meta.template_factor == 2.0 and meta.update_interval == 200
    assert meta.mean == (0.485, 0.456, 0.406) and meta.std == (0.229, 0.224, 0.225)
    assert meta.update_score_threshold == 0.5 and meta.graph == "cached" and meta.step_file == "s.step.onnx"
    assert engine.cached and engine.name == "onnxruntime-fp32-cached"
    props = onnx.load(path, load_external_data=False).metadata_props
    raw = json.loads(dict((p.key, p.value) for p in props)[METADATA_KEY])
    assert raw["preset"] == "S"
    # Independent random inputs, both graphs.
    box_diff, _ = compare_with_torch(model, path, report.step_path, seed=7)
    assert box_diff <= 1e-4


@pytest.mark.parametrize("preset", ["tiny", "B"])
def test_other_presets_export_and_agree(tmp_path, preset):
    model = build_model(get_preset(preset), seed=1)
    report = export_onnx(model, str(tmp_path / f"{preset}.onnx"))
    assert report.box_max_abs_diff <= 1e-4 and report.score_max_abs_diff <= 1e-3
    assert open_engine(report.path).meta.preset == preset


def test_checkpoint_hash_travels(tmp_path):
    report = export_onnx(build_model(get_preset("tiny"), seed=0), str(tmp_path / "m.onnx"),
                         checkpoint_sha256="ab" * 32)
    assert open_engine(report.path).meta.checkpoint_sha256 == "ab" * 32


def test_runtime_tracker_matches_pytorch_tracker_on_a_real_sequence(s_model):
    """Same MixFormerTracker, two engines: onnxruntime on the exported file vs the PyTorch model."""
    import os

    import cv2

    model, path, _ = s_model
    seq = shared_path("data", "sequences", "bag")
    frames = sorted(os.listdir(os.path.join(seq, "img")))[:15]
    images = [cv2.cvtColor(cv2.imread(os.path.join(seq, "img", f)), cv2.COLOR_BGR2RGB) for f in frames]
    with open(os.path.join(seq, "groundtruth_rect.txt")) as f:
        init = [float(v) for v in f.readline().split(",")]
    onnx_engine = open_engine(path)
    trackers = [MixFormerTracker(onnx_engine, update_interval=5),
                MixFormerTracker(TorchEngine(model, onnx_engine.meta), update_interval=5)]
    for t in trackers:
        t.init(images[0], init)
    for image in images[1:]:
        a, b = (t.update(image) for t in trackers)
        assert np.allclose(a.box, b.box, atol=1e-3), (a.box, b.box)
        assert abs(a.score - b.score) < 1e-4


def test_model_without_metadata_is_refused(tmp_path, tiny_model_path):
    graph = onnx.load(tiny_model_path)
    del graph.metadata_props[:]
    bare = str(tmp_path / "bare.onnx")
    onnx.save(graph, bare)
    with pytest.raises(ModelError, match="no edge-track metadata"):
        open_engine(bare)


def test_corrupt_and_missing_models(tmp_path):
    assert_refuses_bad_and_missing(open_engine, tmp_path, "bad.onnx", b"\x08\x07garbage", "cannot load model")


def test_metadata_with_wrong_values_is_refused(tmp_path, tiny_model_path):
    graph = onnx.load(tiny_model_path)
    meta = json.loads(graph.metadata_props[0].value)
    meta["search_factor"] = -1
    graph.metadata_props[0].value = json.dumps(meta)
    path = str(tmp_path / "m.onnx")
    onnx.save(graph, path)
    with pytest.raises(ModelError, match="search_factor"):
        open_engine(path)


def test_meta_json_round_trip():
    meta = ModelMeta(preset="x", template_size=64, search_size=128, search_factor=4.0, bins=32)
    assert ModelMeta.from_json(meta.to_json()) == meta
    with pytest.raises(ModelError, match="unknown metadata field 'colour'"):
        ModelMeta.from_json(json.dumps({**json.loads(meta.to_json()), "colour": "RGB"}))
    with pytest.raises(ModelError, match="lacks required field 'bins'"):
        raw = json.loads(meta.to_json())
        del raw["bins"]
        ModelMeta.from_json(json.dumps(raw))


def test_tiny_tracker_runs_on_generated_frames(tiny_model_path):
    frames, gt = make_clip_frames()
    tracker = MixFormerTracker(open_engine(tiny_model_path))
    tracker.init(frames[0], gt[0])
    for frame in frames[1:]:
        r = tracker.update(frame)
        assert np.isfinite(r.box).all() and 0 <= r.score <= 1


def test_cached_and_full_paths_track_identically(s_model):
    """The step graph on cached K/V equals the full graph, through template updates."""
    import os

    import cv2

    _, path, _ = s_model
    seq = shared_path("data", "sequences", "MotorRolling")
    names = sorted(os.listdir(os.path.join(seq, "img")))[:12]
    images = [cv2.cvtColor(cv2.imread(os.path.join(seq, "img", n)), cv2.COLOR_BGR2RGB) for n in names]
    init = [float(v) for v in open(os.path.join(seq, "groundtruth_rect.txt")).readline().split(",")]
    cached, full = open_engine(path), open_engine(path, use_cache=False)
    assert cached.cached and not full.cached
    trackers = [MixFormerTracker(cached, update_interval=3), MixFormerTracker(full, update_interval=3)]
    for t in trackers:
        t.init(images[0], init)
    for image in images[1:]:
        a, b = (t.update(image) for t in trackers)
        assert np.allclose(a.box, b.box, atol=1e-4) and abs(a.score - b.score) < 1e-5


def test_template_update_refreshes_the_cache(tiny_model_path):
    engine = open_engine(tiny_model_path)
    meta = engine.meta
    rng = np.random.default_rng(0)
    t1, t2 = (rng.standard_normal((1, 3, meta.template_size, meta.template_size)).astype(np.float32) for _ in range(2))
    search = rng.standard_normal((1, 3, meta.search_size, meta.search_size)).astype(np.float32)
    full = open_engine(tiny_model_path, use_cache=False)
    for online in (t1, t2):
        engine.set_templates(t1, online)
        full.set_templates(t1, online)
        a, b = engine.run(search), full.run(search)
        assert np.allclose(a.box_cxcywh, b.box_cxcywh, atol=1e-5)
    engine.set_templates(t1, t1)
    stale = engine.run(search)
    engine.set_templates(t1, t2)
    assert not np.allclose(stale.box_cxcywh, engine.run(search).box_cxcywh, atol=1e-7)


def test_missing_or_foreign_step_graph(tmp_path, tiny_model_path):
    import shutil

    from train.export.onnx_files import step_path_for

    copy = str(tmp_path / "m.onnx")
    shutil.copy(tiny_model_path, copy)
    with pytest.raises(ModelError, match="step graph .* missing"):
        open_engine(copy)
    other = export_onnx(build_model(get_preset("tiny"), seed=9), str(tmp_path / "o.onnx"),
                        checkpoint_sha256="cd" * 32)
    shutil.copy(other.step_path, step_path_for(copy))
    with pytest.raises(ModelError, match="does not belong"):
        open_engine(copy)


def test_dynamic_batch_export(tmp_path):
    model = build_model(get_preset("tiny"), seed=0)
    report = export_onnx(model, str(tmp_path / "d.onnx"), dynamic_batch=True)
    assert report.box_max_abs_diff <= 1e-4
    box_diff, _ = compare_with_torch(model, report.path, report.step_path, batch=3, seed=4)
    assert box_diff <= 1e-4


def test_full_only_export(tmp_path):
    report = export_onnx(build_model(get_preset("tiny"), seed=0), str(tmp_path / "f.onnx"), cached=False)
    engine = open_engine(report.path)
    assert report.step_path is None and engine.meta.graph == "full" and not engine.cached


def test_export_writes_a_size_update_rate_chosen_on_validation(tmp_path, capsys):
    from edge.cli.main import main
    from edge.engines import open_engine

    out = str(tmp_path / "m.onnx")
    assert main(["export", "--seed", "0", "--variant", "tiny", "--output", out, "--no-check",
                 "--size-update-rate", "0.5"]) == 0
    assert open_engine(out, threads=1).meta.size_update_rate == 0.5
    assert main(["export", "--seed", "0", "--variant", "tiny", "--output", out, "--no-check",
                 "--size-update-rate", "1.5"]) == 2
    assert "--size-update-rate must be in (0, 1]" in capsys.readouterr().err
