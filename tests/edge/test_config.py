"""The device configuration: typed, validated, one line naming the key."""

import os

import pytest
import yaml

from edge.cli.main import main
from edge.config import DeviceConfig, dump_defaults, load_config, load_config_file
from edge.errors import ConfigError


def test_defaults_round_trip_through_yaml():
    cfg = load_config(yaml.safe_load(dump_defaults()))
    assert isinstance(cfg, DeviceConfig) and cfg.control.max_rate_dps == 60.0 and cfg.outputs[0].type == "log"


@pytest.mark.parametrize("data, message", [
    ({"camera": {"fsp": 30}}, "camera.fsp: unknown key"),
    ({"camera": {"fps": "fast"}}, "camera.fps: expected a number"),
    ({"camera": {"fps": 0}}, "camera.fps: 0.0 is out of range"),
    ({"control": {"kp": True}}, "control.kp: expected a number"),
    ({"control": {"mode": "torque"}}, "control.mode: must be one of rate, angle"),
    ({"control": {"pan_limits_deg": [10, -10]}}, "control.pan_limits_deg: expected [min, max]"),
    ({"outputs": [{"type": "log"}, {"type": "simplebgc"}]}, "outputs[1].port: required"),
    ({"outputs": [{"type": "pelco_d", "port": 3}]}, "outputs[0].port: expected a string"),
    ({"camera": {"source": 0}}, 'camera.source: expected a string, got 0 (quote it: "0")'),
    ({"outputs": {"type": "log"}}, "outputs: expected a list"),
    ({"tracking": {"lost_frames": 2.5}}, "tracking.lost_frames: expected an integer"),
    ([1, 2], "expected a mapping"),
])
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_check_command(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("camera: {source: '0', fps: 25}\noutputs: [{type: serial_box, port: /dev/ttyUSB0}]\n")
    assert main(["config", "check", str(good)]) == 0
    assert "OK (1 output(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera:\n  fps: [30\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid YAML" in err
    typo = tmp_path / "typo.yaml"
    typo.write_text("control: {kpp: 1}\n")
    assert main(["config", "check", str(typo)]) == 2
    assert "control.kpp: unknown key" in capsys.readouterr().err
    assert main(["config", "check", str(tmp_path / "missing.yaml")]) == 2


def test_config_show_prints_loadable_defaults(capsys):
    assert main(["config", "show"]) == 0
    assert load_config(yaml.safe_load(capsys.readouterr().out)).camera.width == 640


def test_the_defaults_config_show_prints_are_the_defaults_a_file_gets(tmp_path):
    # A file without `outputs:` once got none, while `config show` listed a log output.
    shown = load_config(yaml.safe_load(dump_defaults()))
    assert load_config({}) == shown == DeviceConfig()
    path = tmp_path / "device.yaml"
    path.write_text("camera: {fps: 25}\n")
    assert [(out.type, out.enabled) for out in load_config_file(str(path)).outputs] == [("log", True)]


def test_file_loader_prefixes_the_path(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("model: {threads: -1}\n")
    with pytest.raises(ConfigError, match=r"d.yaml: model.threads: -1 is out of range"):
        load_config_file(str(path))


# -- #13: `config check` refuses what `run` refuses, in one line, exit 2, from both commands --------

def _bad_configs(tmp_path):
    """name -> YAML text that `run` cannot use."""
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    (tmp_path / "v.avi").mkdir()
    return {
        "init_garbage": "tracking: {init: garbage}\n",
        "init_roi_not_a_size": "tracking: {init: 'center:abc'}\n",
        "init_roi_zero": "tracking: {init: 'center:0x40'}\n",
        "track_log_is_a_folder": f"telemetry: {{track_log: '{tmp_path}'}}\n",
        "track_log_under_a_file": f"telemetry: {{track_log: '{a_file}/log.jsonl'}}\n",
        "record_is_a_folder": f"telemetry: {{record: '{tmp_path}/v.avi'}}\n",
        "record_unknown_ending": f"telemetry: {{record: '{tmp_path}/v.gif'}}\n",
        "mavlink_port_not_a_number": "outputs: [{type: mavlink, port: 'udpout:127.0.0.1:notaport'}]\n",
        "mavlink_port_no_host": "outputs: [{type: mavlink, port: 'udpout:14550'}]\n",
        "null_output": "outputs: [{type: log}, null]\n",
        "duplicate_key": "camera: {fps: 25}\ncamera: {fps: 30}\n",
        "duplicate_nested_key": "control:\n  kp: 1\n  kp: 2\n",
        "pan_limits_a_number": "control: {pan_limits_deg: 5}\n",
        "pan_limits_strings": "control: {pan_limits_deg: [a, b]}\n",
        "unknown_engine": "model: {engine: cuda-magic}\n",
        "missing_video": f"camera: {{source: '{tmp_path}/nope.mp4'}}\n",
        "unknown_output_type": "outputs: [{type: laser}]\n",
        "no_outputs": "outputs: []\n",
        "every_output_disabled": "outputs: [{type: log, enabled: false}]\n",
    }


EXPECTED = {
    "init_garbage": "tracking.init: must be x,y,w,h",
    "init_roi_not_a_size": "tracking.init: ROI must look like center:WxH",
    "init_roi_zero": "tracking.init: ROI must look like center:WxH",
    "track_log_is_a_folder": "telemetry.track_log: ",
    "track_log_under_a_file": "is not a folder",
    "record_is_a_folder": "telemetry.record: ",
    "record_unknown_ending": "telemetry.record: ",
    "mavlink_port_not_a_number": "outputs[0].port: ",
    "mavlink_port_no_host": "outputs[0].port: ",
    "null_output": "outputs[1]: expected a mapping, got None",
    "duplicate_key": "duplicate key 'camera' (line 2)",
    "duplicate_nested_key": "duplicate key 'kp' (line 3)",
    "pan_limits_a_number": "control.pan_limits_deg: expected a list, got 5",
    "pan_limits_strings": "control.pan_limits_deg[0]: expected a number",
    "unknown_engine": "model.engine: must be one of",
    "missing_video": "camera.source: no such video",
    "unknown_output_type": "outputs[0].type: must be one of serial_box, ",
    "no_outputs": "outputs: empty: list at least one output (type: log is the dry run",
    "every_output_disabled": "outputs: every output is disabled",
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
@pytest.mark.parametrize("command", ["check", "run"])
def test_config_check_and_run_refuse_the_same_files(tmp_path, capfd, case, command):
    path = tmp_path / "device.yaml"
    path.write_text(_bad_configs(tmp_path)[case])
    argv = ["config", "check", str(path)] if command == "check" else ["run", "--config", str(path)]
    assert main(argv) == 2
    out, err = capfd.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"edge-track: error: {path}: ") and EXPECTED[case] in err, err


def test_a_valid_config_with_every_checked_value_set_passes(tmp_path, capsys):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "0000.png"), np.zeros((48, 64, 3), np.uint8))   # config check reads the source
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump({
        "camera": {"source": str(tmp_path)},
        "tracking": {"init": "center:40x30"},
        "control": {"pan_limits_deg": [-90, 90.5]},
        "outputs": [{"type": "mavlink", "port": "udpout:127.0.0.1:14550"}, {"type": "log"}],
        "telemetry": {"track_log": str(tmp_path / "logs" / "track.jsonl"), "record": str(tmp_path / "run.avi")},
        "model": {"engine": "onnxruntime"},
    }))
    assert main(["config", "check", str(path)]) == 0
    assert "OK (2 output(s)" in capsys.readouterr().out
    cfg = load_config_file(str(path))
    assert cfg.control.pan_limits_deg == [-90.0, 90.5] and cfg.tracking.init == "center:40x30"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_track_log_in_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(ConfigError, match="telemetry.track_log: cannot create .* is not writable"):
        load_config({"telemetry": {"track_log": str(folder / "t.jsonl")}})


def test_an_empty_section_is_its_defaults_but_an_empty_list_item_is_an_error():
    assert load_config(yaml.safe_load("camera:\ncontrol:\n")).camera.width == 640
    with pytest.raises(ConfigError, match=r"outputs\[0\]: expected a mapping"):
        load_config({"outputs": [None]})


def test_config_show_lists_the_plugin_tables_it_checks_against(capsys):
    from edge.camera import SOURCES
    from edge.engines import ENGINES
    from edge.outputs import OUTPUTS

    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    header = [line for line in out.splitlines() if line.startswith("#")]
    assert f"#   outputs[].type: {', '.join(OUTPUTS)}" in header
    assert f"#   model.engine: {', '.join(sorted(ENGINES))}" in header
    assert all(kind.name in out for kind in SOURCES)


def test_an_output_type_added_to_the_registry_is_valid_config_and_opens(monkeypatch):
    from dataclasses import dataclass

    from edge.outputs import OUTPUTS, OutputConfig, OutputKind, open_outputs
    from edge.outputs.base import LogOutput, output_type, required_port

    @dataclass
    class LaserConfig(OutputConfig):   # the type's own settings: one table, its module's
        type: str = output_type("laser")
        port: str = required_port(lambda p: None)

    with pytest.raises(ConfigError, match="outputs\\[0\\].type: must be one of"):
        load_config({"outputs": [{"type": "laser"}]})
    monkeypatch.setitem(OUTPUTS, "laser", OutputKind(LaserConfig, lambda cfg, control: LogOutput()))
    cfg = load_config({"outputs": [{"type": "laser", "port": "/dev/laser0"}]})
    assert isinstance(open_outputs(cfg.outputs)[0], LogOutput)
    with pytest.raises(ConfigError, match="outputs\\[0\\].port: required for output type laser"):
        load_config({"outputs": [{"type": "laser"}]})


def test_each_output_type_loads_into_its_own_settings():
    from edge.outputs import OUTPUTS

    for name, kind in OUTPUTS.items():
        item = load_config({"outputs": [{"type": "log"}, {"type": name, "enabled": False}]}).outputs[1]
        assert type(item) is kind.config and item.type == name


def test_the_outputs_do_not_import_the_device_schema():
    # The device schema reads the outputs' registry (each type's settings); an arrow back from an
    # output to edge.config closed a circle through them (#25). The outputs build their settings
    # with the framework (edge.schema) alone.
    from support.imports import import_graph

    back = [f"{module}:{line} imports {name}" for module, imported in import_graph().items()
            if module == "edge.outputs" or module.startswith("edge.outputs.")
            for name, line in imported if name == "edge.config"]
    assert not back, back


def test_a_schema_field_of_a_type_the_loader_cannot_check_is_a_programming_error():
    from dataclasses import dataclass

    from edge.config import build_dataclass

    @dataclass
    class Odd:
        when: complex = 0j

    with pytest.raises(TypeError, match="no check for type"):
        build_dataclass(Odd, {"when": "now"})


def test_without_pymavlink_a_mavlink_port_is_still_checked_and_other_outputs_open(monkeypatch):
    import sys

    from edge.outputs import open_outputs

    monkeypatch.setitem(sys.modules, "pymavlink", None)   # import pymavlink now raises ImportError
    cfg = load_config({"outputs": [{"type": "log"}, {"type": "mavlink", "port": "udpout:127.0.0.1:14550",
                                                     "enabled": False}]})
    with pytest.raises(ConfigError, match="outputs\\[0\\].port: "):
        load_config({"outputs": [{"type": "mavlink", "port": "udpout:127.0.0.1:notaport"}]})
    outs = open_outputs(cfg.outputs)
    assert [out.name for out in outs] == ["log"]
    for out in outs:
        out.close()


def test_a_huge_integer_is_one_line_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "huge.yaml"
    cfg.write_text("camera: {fps: 1" + "0" * 400 + "}\n")
    with pytest.raises(ConfigError, match="camera.fps: expected a number"):
        load_config_file(str(cfg))
    assert main(["config", "check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "camera.fps" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_config_check_passes_a_mavlink_serial_device_that_is_not_plugged_in_yet(tmp_path):
    # install.sh runs `config check` under set -e, maybe before the autopilot's USB is there.
    path = tmp_path / "device.yaml"
    path.write_text(f"outputs: [{{type: mavlink, port: '{tmp_path}/ttyACM0', baud: 57600}}]\n")
    assert main(["config", "check", str(path)]) == 0

