"""One preflight for `run` and `config check` (#24): the second refuses every config the first
refuses before READY, with the same line, and a refused `run` leaves no file behind."""

import json
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.cli.main import main
from support.media import write_video
from support.processes import edge_track_cmd


def _cases(tmp_path):
    """name -> (device config, what the refusal says): configs `run` refuses before READY."""
    video = str(tmp_path / "clip.avi")
    write_video(video, n=5)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a video\n")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    source = {"source": video}
    return {
        "track_log_under_proc": ({"camera": source, "telemetry": {"track_log": "/proc/edge-track/track.jsonl"}},
                                 "telemetry.track_log"),
        "track_log_under_sys": ({"camera": source, "telemetry": {"track_log": "/sys/track.jsonl"}},
                                "telemetry.track_log"),
        "track_log_ends_in_a_slash": ({"camera": source,
                                       "telemetry": {"track_log": str(tmp_path / "logs" / "newdir") + "/"}},
                                      "telemetry.track_log"),
        "serial_box_without_pyserial": ({"camera": source, "outputs": [{"type": "serial_box", "port": "/dev/ttyUSB0"}]},
                                        "pyserial"),
        "empty_folder_as_source": ({"camera": {"source": str(tmp_path / "empty")}}, "no images"),
        "text_file_as_source": ({"camera": {"source": str(tmp_path / "notes.txt")}}, "notes.txt"),
        "not_a_model": ({"camera": source, "model": {"path": str(tmp_path / "junk.onnx")}}, "junk.onnx"),
    }


CASES = ["track_log_under_proc", "track_log_under_sys", "track_log_ends_in_a_slash", "serial_box_without_pyserial",
         "empty_folder_as_source", "text_file_as_source", "not_a_model"]


@pytest.mark.parametrize("case", CASES)
def test_config_check_refuses_what_run_refuses_with_the_same_line(tmp_path, capsys, monkeypatch, case):
    config, says = _cases(tmp_path)[case]
    if case == "serial_box_without_pyserial":
        monkeypatch.setitem(sys.modules, "serial", None)     # `import serial` now raises ImportError
    path = tmp_path / "device.yaml"
    path.write_text(json.dumps(config))
    before = sorted(os.listdir(tmp_path))
    lines = {}
    for command in (["run", "--config", str(path)], ["config", "check", str(path)]):
        code = main(command)
        err = capsys.readouterr().err
        lines[command[0]] = (code, err)
    assert lines["run"][0] == 2 and says in lines["run"][1], lines
    assert lines["config"] == lines["run"], lines
    assert lines["run"][1].count("\n") == 1, lines
    assert sorted(os.listdir(tmp_path)) == before          # neither command created anything


def _busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


@pytest.mark.parametrize("case", ["target_outside_the_frame", "not_a_model", "web_port_in_use"])
def test_a_refused_run_leaves_no_track_log_and_no_recording(tmp_path, tiny_model_path, case):
    video = str(tmp_path / "clip.avi")
    write_video(video, n=10)                          # 320x240
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    out = tmp_path / "out"
    busy = _busy_port()
    config = {"camera": {"source": video}, "model": {"path": tiny_model_path},
              "telemetry": {"track_log": str(out / "track.jsonl"), "record": str(out / "run.avi")}}
    if case == "target_outside_the_frame":
        config["tracking"] = {"init": "900,900,20,20"}
    elif case == "not_a_model":
        config["model"] = {"path": str(tmp_path / "junk.onnx")}
    else:
        config["web"] = {"enabled": True, "bind": "127.0.0.1", "port": busy.getsockname()[1]}
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps(config))
    try:
        proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True,
                              timeout=60)
    finally:
        busy.close()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not os.path.exists(out / "track.jsonl") and not os.path.exists(out / "run.avi"), os.listdir(out)


def test_config_check_passes_a_config_run_starts_and_opens_no_camera(tmp_path, capsys):
    # The bundled model, an image folder; a live camera (maybe not plugged in yet) is run's to wait for.
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0000.png"), np.zeros((48, 64, 3), np.uint8))
    for source in (str(frames), "/dev/video77"):
        path = tmp_path / "device.yaml"
        path.write_text(json.dumps({"camera": {"source": source}, "tracking": {"init": "center:20x20"},
                                    "telemetry": {"track_log": str(tmp_path / "logs" / "t.jsonl")}}))
        assert main(["config", "check", str(path)]) == 0, capsys.readouterr().err
        assert "OK" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "logs")


@pytest.mark.parametrize("kind", ["serial_box", "serial_nmea", "simplebgc", "mavlink", "pelco_d", "pwm", "pca9685",
                                  "log"])
def test_each_output_type_is_refused_before_ready_when_its_library_is_missing_in_the_outputs_own_words(kind,
                                                                                                     monkeypatch):
    # The library is the registry's (OutputKind.needs): preflight and the output's own error read the same entry.
    from edge.config import ControlConfig
    from edge.errors import ConfigError
    from edge.outputs import OUTPUTS, check_outputs, open_output

    for name in ("serial", "pymavlink.mavutil", "gpiozero", "smbus2"):
        monkeypatch.setitem(sys.modules, name, None)          # none of the optional libraries is installed
    if sys.modules.get("pymavlink") is not None:             # `from pymavlink import mavutil` reads the attribute
        monkeypatch.delattr(sys.modules["pymavlink"], "mavutil", raising=False)
    port = "udpout:127.0.0.1:14550" if kind == "mavlink" else "/dev/ttyUSB7"
    settings = {"type": kind, "port": port} if hasattr(OUTPUTS[kind].config, "port") else {"type": kind}
    cfg = OUTPUTS[kind].config(**settings)   # the type's own settings, as the loader picks them
    needs = OUTPUTS[kind].needs
    if needs is None:
        check_outputs([cfg])                                   # needs nothing beyond edge-track
        return
    with pytest.raises(ConfigError) as checked:
        check_outputs([cfg])
    assert str(checked.value) == f"outputs[0] ({kind}) needs {needs.dist}: {needs.install}"
    with pytest.raises(ConfigError) as opened:
        open_output(cfg, ControlConfig())   # the output itself, opened as run opens it
    assert str(opened.value).endswith(f"needs {needs.dist}: {needs.install}"), opened.value


def test_a_disabled_output_needs_nothing_installed(tmp_path, capsys, monkeypatch):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0000.png"), np.zeros((48, 64, 3), np.uint8))
    monkeypatch.setitem(sys.modules, "pymavlink.mavutil", None)
    path = tmp_path / "device.yaml"
    path.write_text(json.dumps({"camera": {"source": str(frames)},
                                "outputs": [{"type": "log"},
                                            {"type": "mavlink", "port": "udpout:127.0.0.1:14550", "enabled": False}]}))
    assert main(["config", "check", str(path)]) == 0, capsys.readouterr().err
    path.write_text(json.dumps({"camera": {"source": str(frames)},
                                "outputs": [{"type": "log"}, {"type": "mavlink", "port": "udpout:127.0.0.1:14550"}]}))
    assert main(["config", "check", str(path)]) == 2
    assert "outputs[1] (mavlink) needs pymavlink" in capsys.readouterr().err
