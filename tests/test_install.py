"""The device installer and its systemd unit: the right extra per platform, every group the unit
asks for exists and holds the service user."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

INSTALL = os.path.join(REPO, "firmware_scripts", "install.sh")
UNIT = os.path.join(REPO, "firmware_scripts", "edge-track.service.in")


def installer(function: str, *args: str) -> str:
    """Call one function of install.sh (sourced, so nothing is installed; `id` answers "not root"
    so that a script which ran its body when sourced would stop at its root check)."""
    script = f'id() {{ echo 1000; }}; source "{INSTALL}" && {function} "$@"'
    proc = subprocess.run(["bash", "-c", script, "install.sh", *args],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def extras_of(name: str) -> list[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"][name]


def unit_groups() -> list[str]:
    for line in open(UNIT):
        if line.startswith("SupplementaryGroups="):
            return line.split("=", 1)[1].split()
    return []


def test_raspberry_pi_gets_the_pi_extra_with_smbus2(tmp_path):
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    platform, extras = installer("detect_platform", str(tmp_path / "no-tegra"), str(model)).split()
    assert platform == "pi" and extras.split(",") == ["pi"]
    assert any(dep.startswith("smbus2") for dep in extras_of("pi"))         # the pca9685 output's bus
    assert installer("detect_platform", str(tmp_path / "no-tegra"), str(tmp_path / "none")).split()[0] == "generic"
    tegra = tmp_path / "nv_tegra_release"
    tegra.write_text("# R36 (release), REVISION: 4.0\n")
    assert installer("detect_platform", str(tegra), str(model)).split() == ["jetson", "gimbal,jetson"]


def test_unit_asks_for_i2c_and_the_installer_creates_every_group_it_asks_for():
    groups = unit_groups()
    assert {"video", "dialout", "gpio", "i2c"} <= set(groups)               # PCA9685 boards sit on /dev/i2c-*
    assert installer("service_groups").split() == groups


def test_rendered_unit_with_i2c_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    exe = tmp_path / "edge-track"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    unit = tmp_path / "edge-track.service"
    unit.write_text(open(UNIT).read().replace("@EXEC@", str(exe)).replace("@CONFIG@", "/etc/edge-track/device.yaml")
                    .replace("@USER@", "edge-track"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    assert "i2c" in unit.read_text().split("SupplementaryGroups=")[1].splitlines()[0].split()
