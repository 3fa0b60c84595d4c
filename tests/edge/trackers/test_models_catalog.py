"""The bundled trackers, the default rule, ``edge-track models``, and names or paths in --model."""

import json
import os

import pytest

from conftest import REPO
from edge.cli.main import main
from edge.errors import ConfigError
from edge.trackers import catalog as cat


def write_catalog(path, trackers):
    path.write_text(json.dumps({"measured": {"date": "2026-12-07"}, "trackers": trackers}))
    return str(path)


def entry(name, band, on_failed, on_tracked, files=("model/edge-track-default.onnx",)):
    return {"name": name, "family": "mixformerv2", "precision": "int8", "path": files[0], "files": list(files),
            "licence": "Apache-2.0", "description": name,
            "results": {"validation_band": band, "lost_on_failed": on_failed, "lost_on_tracked": on_tracked}}


def test_the_default_is_the_best_validation_band_among_trackers_whose_lost_state_works(tmp_path):
    trackers = [entry("a", 0.60, 0.50, 0.005), entry("b", 0.70, 0.30, 0.000),   # b: LOST misses failures
                entry("c", 0.65, 0.45, 0.002), entry("d", 0.80, 0.90, 0.020)]   # d: LOST on tracked frames
    catalog = cat.load_catalog(write_catalog(tmp_path / "t.json", trackers))
    assert catalog.default().name == "c"
    # A model that wins the split becomes the default by its entry and numbers alone.
    trackers.append(entry("e", 0.66, 0.41, 0.01))
    assert cat.load_catalog(write_catalog(tmp_path / "t.json", trackers)).default().name == "e"
    # A tracker whose files are not in this install is never the default.
    trackers.append(entry("f", 0.90, 0.9, 0.0, files=("model/not-there.onnx",)))
    assert cat.load_catalog(write_catalog(tmp_path / "t.json", trackers)).default().name == "e"


def test_with_no_measured_lost_state_the_first_installed_tracker_is_the_default(tmp_path):
    trackers = [entry("gone", 0.9, 0.9, 0.0, files=("model/not-there.onnx",)), entry("x", None, None, None)]
    assert cat.load_catalog(write_catalog(tmp_path / "t.json", trackers)).default().name == "x"


def test_a_damaged_catalog_is_one_line(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(ConfigError, match="reinstall") as err:
        cat.load_catalog(str(tmp_path / "t.json"))
    assert "\n" not in str(err.value)


def test_the_shipped_default_follows_the_rule_from_the_shipped_numbers():
    catalog = cat.load_catalog()
    default = catalog.default()
    assert default is not None and default.installed and default.lost_state_works
    for other in catalog.entries:
        if other.installed and other.lost_state_works:
            assert other.results["validation_band"] <= default.results["validation_band"]
    # The numbers that chose it are recorded with it, and say how they were measured.
    for key in ("validation_auc", "validation_band", "dev_auc", "lost_on_failed", "lost_on_tracked"):
        assert isinstance(default.results[key], float), key
    assert catalog.measured["cpu"] and catalog.measured["date"] and catalog.measured["commands"]


def test_models_json_lists_every_bundled_tracker_and_one_default(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert names == cat.load_catalog().names and len(set(names)) == len(names)
    assert [r["name"] for r in rows if r["default"]] == [cat.load_catalog().default().name]
    for r in rows:
        assert {"name", "family", "bundled", "default", "path", "precision", "files", "licence"} <= set(r)
        assert r["bundled"] and os.path.exists(r["path"])
    assert {"nanotrack", "mixformerv2"} <= {r["family"] for r in rows}


def test_models_table_says_why_the_default_is_the_default(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    default = cat.load_catalog().default()
    assert f"default: {default.name}, the best validation band mean" in out
    assert "LOST state works" in out and "--model NAME|PATH" in out


def test_models_describes_a_tracker_the_user_points_at(capsys):
    folder = os.path.join(cat.DATA, "nanotrack", "v3")
    assert main(["models", "--json", "--model", folder]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = [r for r in rows if not r["bundled"]]
    assert len(mine) == 1 and mine[0]["family"] == "nanotrack" and mine[0]["precision"] == "fp32"
    assert mine[0]["path"] == os.path.abspath(folder) and not mine[0]["default"]


@pytest.mark.parametrize("argv", [
    ["track", "--model", "nanotrack-v9"],
    ["eval", "--sequences", "SAMPLE", "--model", "nanotrack-v9"],
    ["models", "--model", "nanotrack-v9"],
    ["--camera", "SAMPLE_VIDEO", "--roi", "center:40x40", "--model", "nanotrack-v9"],
])
def test_an_unknown_model_name_is_one_line_naming_what_models_lists(argv, capsys):
    from edge.sample import SAMPLE_DIR, SAMPLE_FRAMES

    argv = [SAMPLE_DIR if a == "SAMPLE" else SAMPLE_FRAMES if a == "SAMPLE_VIDEO" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nanotrack-v9" in err, err
    assert "edge-track models lists: " + ", ".join(cat.load_catalog().names) in err, err


def test_a_nanotrack_folder_missing_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "nanotrack_backbone.onnx").write_bytes(b"\0")
    assert main(["track", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "*head*.onnx" in err, err


def test_the_device_config_takes_a_bundled_name():
    from edge.build import tracker_for_config
    from edge.config import load_config
    from edge.trackers.nanotrack import NanoTracker

    cfg = load_config({"model": {"path": "nanotrack-v3"}})
    assert isinstance(tracker_for_config(cfg), NanoTracker)
    with pytest.raises(ConfigError, match="model.path: .*edge-track models lists"):
        load_config({"model": {"path": "nanotrack-v9"}})


def test_the_default_tracker_runs_when_nothing_is_named():
    from edge.build import default_model_path, tracker_for_config
    from edge.config import load_config

    default = cat.load_catalog().default()
    assert default_model_path() == default.path
    tracker = tracker_for_config(load_config({}))
    assert tracker.meta.precision == default.precision


@pytest.mark.parametrize("page, students", [("README.md", False), ("docs/models/default-tracker.md", False),
                                             ("edge/data/model/MODEL_CARD.md", True)])
def test_the_results_tables_are_the_catalogs_numbers(page, students):
    """The front page, the docs and the model card show what the measuring run recorded, not a copy
    that can drift: each holds the table `python -m train.measure.record_results --table` prints
    (the model card with `--students`: the MixFormerV2 students of the same run)."""
    from train.measure.record_results import results_table

    with open(cat.CATALOG, encoding="utf-8") as f:
        table = results_table(json.load(f), students=students)
    with open(os.path.join(REPO, page), encoding="utf-8") as f:
        text = f.read()
    command = "python -m train.measure.record_results --table" + (" --students" if students else "")
    start, end = f"<!-- results: {command} -->\n", "\n<!-- /results -->"
    assert start in text and end in text, page
    assert text.split(start, 1)[1].split(end, 1)[0] == table


def test_students_show_only_where_asked():
    from train.measure.record_results import results_table

    catalog = {"trackers": [], "peers": [{"name": "peer", "results": {}},
                                         {"name": "student", "student": True, "results": {}}]}
    assert "| student |" not in results_table(catalog)
    assert "| student |" in results_table(catalog, students=True) and "| peer |" in results_table(catalog)


def test_a_bundled_name_in_another_case_is_the_same_tracker():
    assert cat.resolve("NanoTrack-V3")[1].name == "nanotrack-v3"


@pytest.mark.parametrize("damage", [
    lambda t: t[0]["results"].update(lost_on_failed="high"),
    lambda t: t[0]["results"].update(validation_band=float("nan")),
    lambda t: t[0].update(name=7),
    lambda t: t[0].update(files="model/edge-track-default.onnx"),
    lambda t: t[0].pop("path"),
    lambda t: t.append("not an object"),
])
def test_a_damaged_entry_is_one_line_not_a_traceback(tmp_path, damage):
    trackers = [entry("a", 0.6, 0.5, 0.0)]
    damage(trackers)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"trackers": trackers}).replace("NaN", "NaN"))
    with pytest.raises(ConfigError, match="damaged") as err:
        cat.load_catalog(str(path))
    assert "\n" not in str(err.value)


def test_a_default_without_a_band_is_explained_not_a_key_error(tmp_path, monkeypatch, capsys):
    from edge.cli import models

    trackers = [entry("x", None, 0.9, 0.0)]    # LOST works, but nothing to rank by: the first installed
    monkeypatch.setattr(models, "load_catalog", lambda: cat.load_catalog(write_catalog(tmp_path / "t.json", trackers)))
    assert main(["models"]) == 0
    assert "default: x (no bundled tracker has a measured LOST state that works)" in capsys.readouterr().out
