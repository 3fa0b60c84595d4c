"""Model metadata with a value it cannot have (#24) is refused at load, in one line naming the key
and the file: a NaN mean used to load and make every frame LOST, a crop factor of 1e30 a traceback
in the first crop.

The hostile files are the bundled model with one metadata value rewritten.
"""

import json
import math
import os
import shutil

import pytest

from conftest import make_clip_frames
from edge.cli.main import main
from edge.config import load_config
from edge.engines import open_engine
from edge.engines.model_meta import METADATA_KEY, SEARCH_FACTOR_MAX, ModelMeta, step_path_for
from edge.errors import ConfigError, ModelError
from edge.sample import BUNDLED_MODEL

onnx = pytest.importorskip("onnx")

BAD_VALUES = {
    "mean": [[math.nan, 0.0, 0.0], [1e30, 0.0, 0.0], [-0.5, 0.0, 0.0], [0.0, 0.0], [True, 0.0, 0.0]],
    "std": [[math.nan, 1.0, 1.0], [1e-30, 1.0, 1.0], [1e30, 1.0, 1.0], [0.0, 1.0, 1.0], "abc"],
    "search_factor": [math.nan, math.inf, 1e30, 1e-30, 0.5, -4.0, True],
    "template_factor": [math.nan, 1e30, 1e-30, 0.0],
    "template_size": [0, -128, 1 << 40, 128.0, True],
    "search_size": [0, 1 << 40, "224"],
    "bins": [0, 10 ** 9],
    "update_interval": [0, 10 ** 9, 2.5],
    "lost_frames": [0, 10 ** 9],
    "update_score_threshold": [math.nan, -0.1, 1.5],
    "lost_score_threshold": [math.nan, 1e30],
    "size_update_rate": [math.nan, 0.0, 2.0],
    "step_file": ["../../elsewhere.onnx", 7],
    "extra": [[1, 2]],
}
CASES = [(key, value) for key, values in sorted(BAD_VALUES.items()) for value in values]


def bundled_meta() -> dict:
    model = onnx.load(BUNDLED_MODEL, load_external_data=False)
    return json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))


@pytest.fixture(scope="module")
def bundled_model():
    return onnx.load(BUNDLED_MODEL)


def rewrite_meta(model, folder, **changes) -> str:
    """The bundled model (and its step graph beside it) with ``changes`` in its metadata."""
    edited = type(model)()
    edited.CopyFrom(model)
    prop = next(p for p in edited.metadata_props if p.key == METADATA_KEY)
    prop.value = json.dumps({**json.loads(prop.value), **changes})   # NaN and Infinity as Python writes them
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, os.path.basename(BUNDLED_MODEL))
    onnx.save(edited, path)
    step = step_path_for(BUNDLED_MODEL)
    shutil.copy(step, os.path.join(folder, os.path.basename(step)))
    return path


@pytest.mark.parametrize("key, value", CASES, ids=[f"{k}={v!r}"[:40] for k, v in CASES])
def test_a_metadata_value_out_of_its_range_is_refused_naming_the_key(key, value):
    raw = {**bundled_meta(), key: value}
    with pytest.raises(ModelError) as info:
        ModelMeta.from_json(json.dumps(raw), source="m.onnx")
    message = str(info.value)
    assert message.startswith("m.onnx: bad model metadata: ") and f"{key} must" in message, message
    assert "\n" not in message and len(message) < 300, message


def test_the_bundled_metadata_is_within_every_range():
    meta = ModelMeta.from_json(json.dumps(bundled_meta()))
    assert meta.std[0] == pytest.approx(1 / 255) and meta.search_factor == 3.5


@pytest.mark.parametrize("key, value", [("mean", [math.nan, 0.0, 0.0]), ("std", [1e-30, 1.0, 1.0]),
                                        ("search_factor", 1e30), ("template_factor", 1e-30)])
def test_the_engine_refuses_the_file_at_load(tmp_path, bundled_model, key, value):
    path = rewrite_meta(bundled_model, str(tmp_path / "m"), **{key: value})
    with pytest.raises(ModelError, match=f"^{path}: bad model metadata: {key} must"):
        open_engine(path)


@pytest.mark.parametrize("key, value", [("mean", [math.nan, 0.0, 0.0]), ("search_factor", 1e30)])
def test_track_with_such_a_model_is_one_line_and_exit_2(tmp_path, bundled_model, capsys, key, value):
    import cv2

    path = rewrite_meta(bundled_model, str(tmp_path / "m"), **{key: value})
    frames, _ = make_clip_frames(6)
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    assert main(["track", "--video", video, "--init", "40,30,24,20", "--model", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert path in err and f"{key} must" in err, err


def test_a_metadata_integer_of_thousands_of_digits_is_one_line():
    text = json.dumps(bundled_meta()).replace('"bins": 56', '"bins": 1' + "0" * 5000)
    with pytest.raises(ModelError, match="^m.onnx: metadata 'edge_track' is not JSON"):
        ModelMeta.from_json(text, source="m.onnx")


def test_the_config_widens_the_search_only_as_far_as_the_metadata_allows():
    meta = ModelMeta.from_json(json.dumps(bundled_meta()))
    assert load_config({"tracking": {"max_search_factor": SEARCH_FACTOR_MAX}})
    assert meta.replace(search_factor=SEARCH_FACTOR_MAX).search_factor == SEARCH_FACTOR_MAX
    with pytest.raises(ConfigError, match="tracking.max_search_factor: "):
        load_config({"tracking": {"max_search_factor": SEARCH_FACTOR_MAX + 1}})
    for factor in (SEARCH_FACTOR_MAX + 1, 0.5):   # config check refuses what the tracker would
        with pytest.raises(ConfigError, match="model.search_factor: "):
            load_config({"model": {"search_factor": factor}})
        with pytest.raises(ModelError):
            meta.replace(search_factor=factor)
    assert load_config({"model": {"search_factor": 0}}).model.search_factor == 0.0   # 0: the model's


def tflite_with_metadata(path, payload: bytes) -> str:
    """A flatbuffer holding only what the TFLite engine reads before its interpreter: the
    ``edge_track`` metadata entry pointing at a buffer of ``payload``."""
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(0)
    data = b.CreateByteVector(payload)
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, data, 0)
    buffer = b.EndObject()
    b.StartObject(3)
    empty = b.EndObject()
    b.StartVector(4, 2, 4)
    b.PrependUOffsetTRelative(buffer)
    b.PrependUOffsetTRelative(empty)
    buffers = b.EndVector()
    name = b.CreateString(METADATA_KEY)
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, name, 0)
    b.PrependUint32Slot(1, 1, 0)
    entry = b.EndObject()
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(entry)
    entries = b.EndVector()
    b.StartObject(8)
    b.PrependUOffsetTRelativeSlot(4, buffers, 0)
    b.PrependUOffsetTRelativeSlot(6, entries, 0)
    b.Finish(b.EndObject())
    with open(path, "wb") as f:
        f.write(b.Output())
    return str(path)


def test_the_tflite_engine_checks_its_metadata_before_its_interpreter(tmp_path):
    good = json.dumps(bundled_meta()).encode()
    from edge.engines.tflite_metadata import read_metadata

    assert read_metadata(open(tflite_with_metadata(tmp_path / "g.tflite", good), "rb").read()) == {METADATA_KEY: good}
    nan_mean = json.dumps({**bundled_meta(), "mean": [math.nan, 0, 0]}).encode()
    path = tflite_with_metadata(tmp_path / "nan.tflite", nan_mean)
    with pytest.raises(ModelError, match=f"^{path}: bad model metadata: mean must"):
        open_engine(path)
    path = tflite_with_metadata(tmp_path / "latin1.tflite", "{\"preset\": \"caf\u00e9\"}".encode("latin-1"))
    with pytest.raises(ModelError, match=f"^{path}: metadata 'edge_track' is not UTF-8 text"):
        open_engine(path)
