"""TensorRT/pycuda glue against the faithful fake (tests/support/fake_tensorrt.py): no GPU needed."""

import numpy as np
import pytest

from support.models import assert_refuses_bad_and_missing

pytest.importorskip("onnx")   # the fake builder parses the ONNX file; a runtime-only install skips

from edge.engines import open_engine  # noqa: E402
from edge.engines.tensorrt import TensorRTEngine, read_engine_file, tensorrt_available  # noqa: E402
from edge.engines.tensorrt_build import build_engine  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from support import fake_tensorrt  # noqa: E402


@pytest.fixture()
def built(tmp_path, tiny_model_path):
    backend = fake_tensorrt.fake_backend()
    cache = str(tmp_path / "timing.cache")
    report = build_engine(tiny_model_path, str(tmp_path / "m.engine"), backend=backend, timing_cache=cache)
    return report, backend, cache


def test_build_writes_both_plans_with_metadata_and_fp16(built, tiny_model_path):
    report, _, cache = built
    meta, plans = read_engine_file(report.path)
    assert set(plans) == {"contract", "step"} and meta.precision == "fp16" and meta.preset == "tiny"
    network, config = fake_tensorrt.FakeBuilder.built[-1]
    assert "fp16" in config.flags and config.pools["workspace"] == 1024 << 20
    assert config.profiles == []  # static batch-1 export: nothing dynamic to profile
    # The timing cache is read back and extended on each build.
    assert open(cache, "rb").read().count(b"+entry") == 2


def test_dynamic_batch_models_get_a_batch_1_profile(tmp_path):
    from train.export.onnx import export_onnx
    from train.models.model import build_model
    from train.models.presets import get_preset

    onnx_path = export_onnx(build_model(get_preset("tiny"), seed=0), str(tmp_path / "d.onnx"), dynamic_batch=True).path
    backend = fake_tensorrt.fake_backend()
    report = build_engine(onnx_path, str(tmp_path / "d.engine"), backend=backend)
    _, config = fake_tensorrt.FakeBuilder.built[-1]
    shapes = config.profiles[0].shapes
    assert shapes["search"] == ((1, 3, 128, 128),) * 3 and shapes["template_kv"][0][0] == 1
    engine = TensorRTEngine(report.path, backend=backend)
    assert engine._step.inputs["search"][0].shape == (1, 3, 128, 128)


def test_engine_matches_onnxruntime_and_uploads_templates_only_on_update(built, tiny_model_path):
    report, backend, _ = built
    engine = TensorRTEngine(report.path, backend=backend)
    reference = open_engine(tiny_model_path)
    assert engine.name == "tensorrt-fp16-cached"
    contract, step = engine._contract, engine._step
    # The cache is one device buffer: the contract plan's output is the step plan's input.
    assert contract.context.addresses["template_kv"] == step.context.addresses["template_kv"]
    rng = np.random.default_rng(0)
    t = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    searches = [rng.standard_normal((1, 3, 128, 128)).astype(np.float32) for _ in range(4)]
    engine.set_templates(t, t)
    reference.set_templates(t, t)
    template_addr = contract.context.addresses["template"]
    uploads_after_update = list(backend.cuda.uploads)
    for s in searches:
        a, b = engine.run(s), reference.run(s)
        assert np.allclose(a.box_cxcywh, b.box_cxcywh, atol=1e-5) and abs(a.score_logit - b.score_logit) < 1e-4
    frame_uploads = backend.cuda.uploads[len(uploads_after_update):]
    assert frame_uploads == [step.context.addresses["search"]] * 4       # only the search crop per frame
    assert uploads_after_update.count(template_addr) == 1
    assert contract.context.executions == 1 and step.context.executions == 4
    # A template update refreshes the cache on the device.
    t2 = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    engine.set_templates(t, t2)
    reference.set_templates(t, t2)
    assert np.allclose(engine.run(searches[0]).box_cxcywh, reference.run(searches[0]).box_cxcywh, atol=1e-5)
    assert contract.context.executions == 2


def test_full_path_without_cache(built, tiny_model_path):
    report, backend, _ = built
    engine = TensorRTEngine(report.path, backend=backend, use_cache=False)
    reference = open_engine(tiny_model_path, use_cache=False)
    rng = np.random.default_rng(1)
    t = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    s = rng.standard_normal((1, 3, 128, 128)).astype(np.float32)
    engine.set_templates(t, t)
    reference.set_templates(t, t)
    assert engine.name == "tensorrt-fp16-full"
    assert np.allclose(engine.run(s).box_cxcywh, reference.run(s).box_cxcywh, atol=1e-5)


def test_buffer_shapes_come_from_the_engine_tensors(built):
    report, backend, _ = built
    engine = TensorRTEngine(report.path, backend=backend)
    step = engine._step
    assert step.inputs["search"][0].shape == (1, 3, 128, 128)
    assert step.inputs["template_kv"][0].shape == (1, 2, 2, 2, 32, 32)   # tiny: 2 layers, 2 heads, 2x16 tokens
    assert step.outputs["pred_boxes"][0].shape == (1, 4) and step.outputs["pred_scores"][0].shape == (1,)


def test_bad_engine_files(tmp_path):
    assert_refuses_bad_and_missing(read_engine_file, tmp_path, "x.engine", b"not an engine",
                                   "not an edge-track TensorRT engine")


def test_clear_error_when_tensorrt_is_absent(built):
    if tensorrt_available():
        pytest.skip("TensorRT is installed here")
    report, _, _ = built
    with pytest.raises(ModelError, match="needs TensorRT"):
        open_engine(report.path)
