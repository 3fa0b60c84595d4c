"""firmware_scripts/arm64_check.sh: argument handling and the one-line 'what is missing' exits.

The full run (debootstrap + qemu, many minutes) is not part of the test suite; these check the
paths a user without the prerequisites hits, through a fake PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "firmware_scripts", "arm64_check.sh")
BASH = shutil.which("bash")


def _fake_bin(tmp_path, uid: int, keep=()):
    """A PATH holding a fake `id` and links to the named real tools only."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "id").write_text(f"#!{BASH}\necho {uid}\n")
    (bindir / "id").chmod(0o755)
    for tool in keep:
        real = shutil.which(tool)
        if real:
            (bindir / tool).symlink_to(real)
    return str(bindir)


def _run(args, path):
    return subprocess.run([BASH, SCRIPT, *args], capture_output=True, text=True,
                          env={"PATH": path, "HOME": os.environ.get("HOME", "/root")}, timeout=60)


def test_script_parses():
    assert subprocess.run([BASH, "-n", SCRIPT]).returncode == 0


def test_not_root_is_one_line(tmp_path):
    proc = _run([], _fake_bin(tmp_path, 1000))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "arm64_check: needs root (debootstrap, chroot and mounts): run it with sudo"]
    assert proc.stdout == ""


def test_missing_debootstrap_is_named_in_one_line(tmp_path):
    # Root, but neither debootstrap nor apt-get to install it.
    fake = _fake_bin(tmp_path, 0, keep=("chroot", "mount", "umount", "tar"))
    proc = _run(["--rootfs", str(tmp_path / "rootfs")], fake)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arm64_check: missing:")
    assert "debootstrap" in lines[0] and "tar" not in lines[0].split("(")[0]
    assert not (tmp_path / "rootfs").exists()


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option --bogus"),
    (["--rootfs"], "--rootfs needs a value"),
    (["--model", ""], "--model needs a value"),
    (["--noise-runs", "x"], "--noise-runs needs a whole number, got x"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    proc = _run(args, _fake_bin(tmp_path, 1000))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"arm64_check: {message} (see --help)" if "unknown" in message
                                                else f"arm64_check: {message}"]


def test_help_describes_the_json_line(tmp_path):
    proc = _run(["--help"], _fake_bin(tmp_path, 1000) + ":/usr/bin:/bin")
    assert proc.returncode == 0
    assert '"auc_arm64"' in proc.stdout and "--rootfs DIR" in proc.stdout
    assert '"auc_host_noise"' in proc.stdout and "--noise-runs K" in proc.stdout


def test_json_line_carries_the_hosts_rounding_band(tmp_path):
    # The script's own summariser, fed eval reports as both sides write them.
    lines = open(SCRIPT, encoding="utf-8").read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("python3 - ") and "<<'EOF'" in line)
    code = "\n".join(lines[start + 1:lines.index("EOF", start)])
    arm, host = tmp_path / "arm", tmp_path / "host"
    arm.mkdir()
    host.mkdir()
    (arm / "onnxruntime-int8.json").write_text(json.dumps({"mean": {"auc": 0.701}}))
    (host / "onnxruntime-int8.json").write_text(json.dumps(
        {"mean": {"auc": 0.656}, "noise": {"mean": {"auc_mean": 0.68, "auc_min": 0.647, "auc_max": 0.7102}}}))
    (host / "tflite.json").write_text(json.dumps({"mean": {"auc": 0.683}}))
    proc = subprocess.run([sys.executable, "-c", code, str(arm), str(host)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["engines"]["onnxruntime-int8"] == {"auc_arm64": 70.1, "auc_host": 65.6,
                                                     "auc_host_noise": [64.7, 71.02]}
    assert result["engines"]["tflite"] == {"auc_arm64": None, "auc_host": 68.3}   # no noise runs: no band
    assert result["tests"]["failed"] is None                                          # no junit.xml


def _cleanup_function() -> str:
    """The script's own cleanup() (the EXIT trap), as text to run on its own."""
    lines = open(SCRIPT, encoding="utf-8").read().splitlines()
    start = lines.index("cleanup() {")
    end = lines.index("}", start)
    return "\n".join(lines[start:end + 1])


def test_cleanup_removes_the_host_output_folder_on_every_exit(tmp_path):
    # A failed eval (set -e) exits before the `rm -rf` at the end: the EXIT trap must remove it.
    host_out = tmp_path / "host_out"
    (host_out / "sub").mkdir(parents=True)
    script = f"set -euo pipefail\nmounted=()\n{_cleanup_function()}\nhost_out={host_out}\ncleanup\n"
    proc = subprocess.run([BASH, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert not host_out.exists()
    # Before mktemp ran (an early exit), cleanup has nothing to remove and must not fail on set -u.
    script = f"set -euo pipefail\nmounted=()\n{_cleanup_function()}\ncleanup\necho done\n"
    proc = subprocess.run([BASH, "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
