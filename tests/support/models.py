"""Model files that are not what they claim."""

import pytest

from edge.errors import ModelError


def assert_refuses_bad_and_missing(open_file, folder, name: str, garbage: bytes, why: str) -> None:
    """``open_file(path)`` refuses a file of ``garbage`` with a ModelError matching ``why``, and a
    file that is not there with one that says so."""
    bad = folder / name
    bad.write_bytes(garbage)
    with pytest.raises(ModelError, match=why):
        open_file(str(bad))
    with pytest.raises(ModelError, match="not found"):
        open_file(str(folder / ("missing-" + name)))
