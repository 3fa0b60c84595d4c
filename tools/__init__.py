"""Research tools that ship with no command and are not installed (pyproject.toml installs edge,
train and calib only): run them from the repository root, ``python -m tools.NAME``.

``layer_probe``: which layers of an INT8 model answer differently on x86 and aarch64; the numbers of
docs/arm64_portability.md come from it, and ``firmware_scripts/arm64_check.sh --layers`` runs it.
"""
