"""Official checkpoint layouts load strictly; wrong files give one clear line."""

import json
import os
import sys
import types

import pytest

torch = pytest.importorskip("torch")

from conftest import shared_path  # noqa: E402
from edge.errors import CheckpointError  # noqa: E402
from train.weights.checkpoint import load_model, read_state_dict  # noqa: E402


def layout(variant):
    with open(shared_path("reference", f"official_state_dict_{variant}.json")) as f:
        return json.load(f)


def seeded_state_dict(variant, seed=0):
    """Random weights in the official key order and shapes, built from the JSON alone."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*shape, generator=g) * 0.02 for k, shape in layout(variant)["shapes"].items()}


@pytest.fixture(scope="module")
def state_s():
    return seeded_state_dict("S")


def save(tmp_path, obj, name="ckpt.pth.tar"):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("variant", ["S", "B"])
def test_official_layout_loads_strictly(tmp_path, variant):
    state = seeded_state_dict(variant)
    path = save(tmp_path, {"net": state, "epoch": 500, "net_type": "mixformer2_vit_online"})
    model, sha = load_model(path, variant)
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key in state:
        assert torch.equal(loaded[key], state[key]), key
    assert len(sha) == 64
    assert sum(t.numel() for t in loaded.values()) == layout(variant)["total_numel_state_dict"]


def test_variant_is_inferred_from_shapes(tmp_path, state_s):
    model, _ = load_model(save(tmp_path, state_s), None)
    assert model.cfg.name == "S"


def _foreign_module(monkeypatch, marker):
    """Classes of a code base that exists only while saving, like the official settings object."""
    mod = types.ModuleType("lib_official_settings")

    class Settings:
        def __init__(self):
            self.env = {"workspace_dir": "/somewhere"}
            self.local_rank = -1

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for cls in (Settings, Payload):
        cls.__module__, cls.__qualname__ = mod.__name__, cls.__name__
        setattr(mod, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return mod


def test_foreign_objects_beside_the_weights_are_ignored(tmp_path, state_s, monkeypatch):
    mod = _foreign_module(monkeypatch, tmp_path / "executed")
    path = save(tmp_path, {"net": state_s, "settings": mod.Settings(), "epoch": 500,
                           "constructor": mod.Settings(), "stats": {"train": mod.Settings()}})
    monkeypatch.delitem(sys.modules, mod.__name__)  # the official code is not importable here
    state = read_state_dict(path)
    assert list(state) == list(state_s)
    assert all(torch.equal(state[k], state_s[k]) for k in state)


def test_code_in_a_checkpoint_is_never_executed(tmp_path, state_s, monkeypatch):
    marker = tmp_path / "executed"
    mod = _foreign_module(monkeypatch, marker)
    path = save(tmp_path, {"net": state_s, "settings": mod.Payload()})
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    assert "system" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_ddp_prefix_and_bare_state_dict(tmp_path, state_s):
    path = save(tmp_path, {"state_dict": {"module." + k: v for k, v in state_s.items()}})
    assert set(read_state_dict(path)) == set(state_s)


def one_line_error(path, variant):
    with pytest.raises(CheckpointError) as info:
        load_model(path, variant)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_truncated_state_dict_names_the_missing_key(tmp_path, state_s):
    state = dict(state_s)
    del state["backbone.blocks.3.mlp.fc2.bias"]
    msg = one_line_error(save(tmp_path, {"net": state}), "S")
    assert "missing key 'backbone.blocks.3.mlp.fc2.bias'" in msg


def test_renamed_key_is_reported(tmp_path, state_s):
    state = {("backbone.reg_token" if k == "backbone.reg_tokens" else k): v for k, v in state_s.items()}
    msg = one_line_error(save(tmp_path, {"net": state}), "S")
    assert "missing key 'backbone.reg_tokens'" in msg


def test_unexpected_key_is_reported(tmp_path, state_s):
    state = dict(state_s, **{"backbone.cls_token": torch.zeros(1, 1, 768)})
    assert "unexpected key 'backbone.cls_token'" in one_line_error(save(tmp_path, state), "S")


def test_misshaped_tensor_is_reported(tmp_path, state_s):
    state = dict(state_s)
    state["box_head.layers.1.0.weight"] = torch.zeros(72, 768)  # the 72-bin public configs
    msg = one_line_error(save(tmp_path, {"net": state}), "S")
    assert "box_head.layers.1.0.weight" in msg and "[72, 768]" in msg and "[96, 768]" in msg


def test_s_weights_given_as_b_suggest_s(tmp_path, state_s):
    msg = one_line_error(save(tmp_path, {"net": state_s}), "B")
    assert "fit variant S" in msg and "--variant S" in msg


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_garbage_files_give_one_line(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    assert "\n" not in one_line_error(str(path), "S")


def test_missing_file(tmp_path):
    assert "not found" in one_line_error(str(tmp_path / "nope.pth.tar"), "S")


def test_checkpoint_without_weights(tmp_path):
    assert "no model weights" in one_line_error(save(tmp_path, {"epoch": 3, "stats": [1, 2]}), "S")


def test_a_readout_student_saved_with_one_readout_layer_loads_as_a_list_of_layers(tmp_path):
    """The first readout students (2026-12-07) named their readout ``readout.q``; it is ``readout.0.q`` now."""
    from train.models.model import build_model
    from train.models.presets import get_preset
    from train.weights.checkpoint import load_model

    model = build_model(get_preset("vitstem-readout"), seed=1)
    old = {k.replace("readout.0.", "readout."): v for k, v in model.state_dict().items()}
    assert "readout.q.weight" in old
    torch.save({"net": old}, tmp_path / "old.pth.tar")
    loaded, _ = load_model(str(tmp_path / "old.pth.tar"))
    assert loaded.cfg.name == "vitstem-readout"
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
