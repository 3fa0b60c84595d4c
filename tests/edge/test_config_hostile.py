"""Hostile config files (#24): each is refused by `config check` and `run` with one line, exit 2,
quickly, whatever the bytes: never a traceback, a hang or memory exhaustion.

The files are generated here. Each runs the real command line in a child process, so a hang is a
timeout and a crash is a traceback on its stderr; the limits on time are generous.
"""

import os
import subprocess
import sys

import pytest

from conftest import REPO
from edge.config import load_config, load_config_file
from edge.errors import ConfigError

DOES_NOT_HANG_S = 60


def edge_track(*argv: str) -> tuple[int, str]:
    """Run ``python -m edge.cli.main ARGV`` in a child; (exit status, stderr)."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        done = subprocess.run([sys.executable, "-m", "edge.cli.main", *argv], cwd=REPO, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=DOES_NOT_HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"edge-track {' '.join(argv)} still ran after {DOES_NOT_HANG_S} s")
    return done.returncode, done.stderr


def assert_one_line(rc: int, err: str, *expected: str) -> None:
    assert rc == 2, err[-2000:]
    assert "Traceback" not in err and err.count("\n") == 1, err[-2000:]
    assert len(err) < 400, f"an error line of {len(err)} characters"
    for text in expected:
        assert text in err, err


def write(path, data) -> str:
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return str(path)


GOOD = "camera: {source: '0', fps: 25}\ncontrol: {kp: 1.5}\n"

NOT_UTF8 = {
    "binary": bytes(range(256)) * 64,
    "latin1": "camera: {source: 'café'}\n".encode("latin-1"),
    "utf16": GOOD.encode("utf-16"),
}


@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_text_that_is_not_utf8_is_one_line(tmp_path, kind):
    path = write(tmp_path / "device.yaml", NOT_UTF8[kind])
    assert_one_line(*edge_track("config", "check", path), path, "not UTF-8 text")


@pytest.mark.parametrize("kind", sorted(NOT_UTF8))
def test_a_profile_that_is_not_utf8_is_one_line(tmp_path, kind):
    profile = write(tmp_path / "gimbal.yaml", NOT_UTF8[kind])
    path = write(tmp_path / "device.yaml", f"control: {{profile: '{profile}'}}\n")
    assert_one_line(*edge_track("config", "check", path), "control.profile: ", "not UTF-8 text")


def test_a_fifo_as_the_config_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = str(tmp_path / "device.yaml")
    os.mkfifo(fifo)
    assert_one_line(*edge_track("config", "check", fifo), fifo, "not a regular file")
    assert_one_line(*edge_track("run", "--config", fifo), fifo, "not a regular file")


def test_a_fifo_as_the_profile_is_refused(tmp_path):
    fifo = str(tmp_path / "gimbal.yaml")
    os.mkfifo(fifo)
    path = write(tmp_path / "device.yaml", f"control: {{profile: '{fifo}'}}\n")
    assert_one_line(*edge_track("config", "check", path), "control.profile: ", "not a regular file")


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "."])
def test_a_device_or_folder_as_the_config_is_refused(tmp_path, special):
    if not os.path.exists(special):
        pytest.skip(f"{special} does not exist here")
    path = os.path.abspath(special) if special == "." else special
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config_file(path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    # A 10 MB string used to come back as a 10 MB error line.
    path = write(tmp_path / "device.yaml", "camera: {source: '" + "a" * 10_000_000 + "'}\n")
    assert_one_line(*edge_track("config", "check", path), path, "larger than")


HOSTILE_YAML = {
    "deep_brackets": ("[" * 100_000, "nest"),
    "deep_mappings": ("{a: " * 5_000 + "1" + "}" * 5_000 + "\n", "nest"),
    "huge_integer": ("camera: {fps: 1" + "0" * 5_000 + "}\n", "5001 digits"),
    "alias_bomb": ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                   + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
                             for i in range(8)), "aliases"),
    "self_alias": ("camera: &c [*c]\n", "alias"),
    "many_nodes": ("outputs:\n" + "- {}\n" * 150_000, "nodes"),
    "bad_timestamp": ("camera: {source: 2026-13-45}\n", "line 1"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML))
def test_hostile_yaml_is_refused_quickly_with_one_line(tmp_path, case):
    text, expected = HOSTILE_YAML[case]
    path = write(tmp_path / "device.yaml", text)
    assert_one_line(*edge_track("config", "check", path), path, expected)


def test_hostile_yaml_as_the_profile_is_refused_too(tmp_path):
    profile = write(tmp_path / "gimbal.yaml", "control: " + "[" * 100_000)
    path = write(tmp_path / "device.yaml", f"control: {{profile: '{profile}'}}\n")
    assert_one_line(*edge_track("run", "--config", path), "control.profile: ", "nest")


def test_a_list_longer_than_the_schema_allows_is_refused_before_its_items_are_built():
    with pytest.raises(ConfigError, match=r"^outputs: at most 16 items, got 748982$"):
        load_config({"outputs": [{"type": "log"}] * 748_982})
    with pytest.raises(ConfigError, match=r"^control.pan_limits_deg: at most 2 items, got 100000$"):
        load_config({"control": {"pan_limits_deg": [0.0] * 100_000}})


@pytest.mark.parametrize("data, key", [
    ({"camera": {"fps": "x" * 900_000}}, "camera.fps: expected a number, got 'xxx"),
    ({"camera": {"x" * 900_000: 1}}, "camera.xxx"),
    ({"control": {"mode": "m" * 900_000}}, "control.mode: must be one of rate, angle, got 'mmm"),
    ({"outputs": [{"type": "t" * 900_000}]}, "outputs[0].type: must be one of"),
    ({"camera": {"source": "/nope/" + "s" * 900_000}}, "camera.source: "),
    ({"tracking": {"init": "9" * 900_000}}, "tracking.init: "),
    ({"control": {"pan_limits_deg": ["p" * 900_000, 1]}}, "control.pan_limits_deg[0]: expected a number, got 'ppp"),
])
def test_long_values_are_cut_in_the_message(data, key):
    with pytest.raises(ConfigError) as info:
        load_config(data)
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message, message[:300]
    assert len(message) < 300, f"a message of {len(message)} characters"


def test_a_duplicate_long_key_is_cut_in_the_message(tmp_path):
    key = "k" * 1000   # YAML allows plain keys of up to 1024 characters
    path = write(tmp_path / "device.yaml", f"{key}: 1\n{key}: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'kkk.*' \\(line 2\\)") as info:
        load_config_file(path)
    assert len(str(info.value)) < 300


def test_a_good_file_still_loads(tmp_path):
    path = write(tmp_path / "device.yaml", "\ufeff" + GOOD)   # a UTF-8 byte order mark is UTF-8
    cfg = load_config_file(path)
    assert cfg.camera.fps == 25.0 and cfg.control.kp == 1.5


def _readers(path):
    """Every reader of a YAML file a user gives, called on ``path``."""
    from calib.profile import update_profile
    from edge.control.camera_model import CameraModel
    from train.config import load_train_config

    return {
        "device config": lambda: load_config_file(path),
        "gimbal profile": lambda: load_config({"control": {"profile": path}}),
        "camera calibration": lambda: CameraModel.from_calibration_file(path, 640, 480),
        "profile update": lambda: update_profile(path, {"latency_s": 0.1}, "latency"),
        "training config": lambda: load_train_config(path),
    }


@pytest.mark.parametrize("reader", ["device config", "gimbal profile", "camera calibration", "profile update",
                                    "training config"])
@pytest.mark.parametrize("hostile", ["utf16", "deep_brackets", "alias_bomb", "fifo"])
def test_every_yaml_reader_refuses_a_hostile_file_in_one_line(tmp_path, reader, hostile):
    path = str(tmp_path / "file.yaml")
    if hostile == "fifo":
        os.mkfifo(path)
    else:
        write(path, NOT_UTF8[hostile] if hostile in NOT_UTF8 else HOSTILE_YAML[hostile][0])
    with pytest.raises(ConfigError) as info:
        _readers(path)[reader]()
    assert "\n" not in str(info.value) and len(str(info.value)) < 300, str(info.value)[:300]
