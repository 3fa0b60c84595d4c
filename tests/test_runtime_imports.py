"""The runtime stays installable without torch: importing all of edge/ never loads torch or train/."""

import subprocess
import sys

CHECK = r"""
import importlib, pkgutil, sys
import edge
for info in pkgutil.walk_packages(edge.__path__, "edge."):
    importlib.import_module(info.name)
from edge.cli.main import build_parser
build_parser()   # registers plug-in commands: must not import torch either
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "train")))
print(",".join(bad))
"""


def test_importing_the_runtime_never_imports_torch_or_train_modules_with_torch():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = [m for m in out.stdout.strip().split(",") if m]
    # train.commands may be loaded (it registers `export`), but it must not pull torch in.
    assert not [m for m in loaded if m.startswith("torch")], loaded
    assert set(loaded) <= {"train", "train.commands", "train.models", "train.models.presets"}, loaded


def test_calibrate_int8_records_its_inputs_without_torch():
    """`edge-track calibrate int8` runs on the device: its recorder lives in train/ but imports no torch."""
    check = ("import sys, train.export.input_recorder; "
             "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
