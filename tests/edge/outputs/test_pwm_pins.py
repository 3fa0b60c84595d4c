"""The pwm output's pins: what `run` needs of gpiozero is tried by `config check` too, and a
factory that does not work here is one line naming what to install, never a traceback."""

import json
import subprocess
import sys

import pytest

from edge.cli.main import main


def _config(tmp_path, **output):
    import cv2
    import numpy as np

    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    cv2.imwrite(str(frames / "0000.png"), np.zeros((48, 64, 3), np.uint8))
    path = tmp_path / "pwm.yaml"
    path.write_text(json.dumps({"camera": {"source": str(frames)},
                                "outputs": [{"type": "pwm", "pan_pin": 12, "tilt_pin": 13, **output}]}))
    return str(path)


def _factory_imports(name: str) -> bool:
    code = f"from edge.outputs.pwm import pin_factory_for; pin_factory_for({name!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.parametrize("factory", ["lgpio", ""])
def test_a_pin_factory_that_does_not_work_here_is_one_line_in_check_and_run(tmp_path, capfd, factory):
    pytest.importorskip("gpiozero")
    if _factory_imports(factory):
        pytest.skip(f"pin factory {factory or '(default)'} works on this machine (a Pi)")
    path = _config(tmp_path, **({"pin_factory": factory} if factory else {}))
    lines = {}
    for command in (["config", "check", path], ["run", "--config", path]):
        code = main(command)
        lines[command[0]] = (code, capfd.readouterr().err)
    assert lines["config"] == lines["run"], lines
    code, err = lines["run"]
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "outputs[0] (pwm)" in err and "python3-lgpio" in err and "pin_factory: mock" in err


def test_mock_pins_pass_the_check(tmp_path, capsys):
    pytest.importorskip("gpiozero")
    assert main(["config", "check", _config(tmp_path, pin_factory="mock")]) == 0, capsys.readouterr().err


def test_a_misspelt_pin_factory_is_refused_by_the_schema():
    from edge.config import load_config
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="outputs\\[0\\].pin_factory: must be one of lgpio, pigpio, rpigpio, mock"):
        load_config({"outputs": [{"type": "pwm", "pan_pin": 12, "tilt_pin": 13, "pin_factory": "lgpo"}]})


def test_the_schema_offers_the_factories_the_output_can_make():
    # One table: the pin_factory choices config show lists are the ones pin_factory_for makes.
    from edge.config import dump_defaults
    from edge.outputs.pwm import FACTORIES

    assert f"#   outputs[].pin_factory: {', '.join(FACTORIES)}" in dump_defaults().splitlines()


def test_a_pin_gpiozero_refuses_is_one_config_line():
    pytest.importorskip("gpiozero")
    from gpiozero.pins.mock import MockFactory

    from edge.config import ControlConfig
    from edge.errors import ConfigError
    from edge.outputs.pwm import PwmConfig, PwmServoOutput

    factory = MockFactory()     # its default pins have no PWM: AngularServo refuses them
    with pytest.raises(ConfigError, match="cannot drive pins 12/13") as err:
        PwmServoOutput(PwmConfig(pan_pin=12, tilt_pin=13), ControlConfig(), pin_factory=factory)
    assert "\n" not in str(err.value)
