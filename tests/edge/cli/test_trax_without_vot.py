"""``edge-track trax`` in an install without the vot extra: one line naming the extra, exit 2."""

import os
import subprocess
import sys

from conftest import REPO

# vot-trax hidden from the child whether or not this venv has it: None in sys.modules fails the import.
WITHOUT_TRAX = "import sys; sys.modules['trax'] = None; from edge.cli.main import main; sys.exit(main(['trax']))"


def test_without_vot_trax_the_command_names_the_extra_in_one_line():
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TRAX], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edge-track: error: edge-track trax needs the vot-trax package: pip install 'edge-track[vot]'"]
