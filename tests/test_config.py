"""The device configuration: typed, validated, one line naming the key."""

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


def test_file_loader_prefixes_the_path(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("model: {threads: -1}\n")
    with pytest.raises(ConfigError, match=r"d.yaml: model.threads: -1 is out of range"):
        load_config_file(str(path))
