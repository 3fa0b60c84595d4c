"""The version is written in one place (edge/__init__.py); packaging and the command line read it."""

from importlib import metadata

import pytest

import edge
from edge.cli.main import main
from support.paths import REPO


def test_pyproject_takes_the_version_from_the_package():
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "edge.__version__"}


def test_the_built_metadata_and_the_command_line_report_the_package_version(tmp_path, monkeypatch, capsys):
    import shutil

    from setuptools.build_meta import prepare_metadata_for_build_wheel

    # Build the metadata from a copy, so the checkout's own egg-info is left alone.
    src = tmp_path / "src"
    (src / "edge").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "edge/__init__.py"):
        shutil.copy(REPO / name, src / name)
    monkeypatch.chdir(src)
    dist_info = prepare_metadata_for_build_wheel(str(tmp_path))
    assert metadata.PathDistribution(tmp_path / dist_info).metadata["Version"] == edge.__version__
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"edge-track {edge.__version__}"
