"""One error tree for the runtime.

Every error a user can cause (a bad file, a bad argument, a camera that is gone) is an
`EdgeTrackError`; the command line prints its message as one line and exits with status 2.
Specific errors also derive from the matching builtin so callers can catch either.
"""


class EdgeTrackError(Exception):
    """Root of every error edge-track raises on purpose."""


class ConfigError(EdgeTrackError, ValueError):
    """A bad argument, option or configuration value."""


class ModelError(EdgeTrackError):
    """A model file that is missing, unreadable, or not an edge-track model."""


class CheckpointError(ModelError):
    """A PyTorch checkpoint that does not fit the requested model."""


class SourceError(EdgeTrackError, OSError):
    """A frame source that cannot be opened or read."""


class SourceGone(SourceError):
    """A source that vanished mid-run (folder unmounted, device unplugged): an outage to wait out,
    unlike a bad file, which would fail the same way on every reopen."""


class DatasetError(EdgeTrackError):
    """A sequence folder or result file that cannot be parsed."""


class MissingExtra(EdgeTrackError):
    """Part of a command needs an optional extra that is not installed (the message names it and
    its ``pip install`` line); a command that can do the rest says so and goes on."""


def clipped(text: str, limit: int = 200) -> str:
    """``text`` cut to about ``limit`` characters: an error line stays one readable line, whatever
    value a user's file put in it."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def quoted(value, limit: int = 60) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters; a huge list or
    string costs no more to show than a short one."""
    import reprlib

    shower = reprlib.Repr()
    shower.maxstring = shower.maxother = shower.maxlong = limit
    shower.maxlist = shower.maxtuple = shower.maxdict = shower.maxset = 8
    try:
        text = shower.repr(value)
    except ValueError:   # an int over Python's digit limit has no repr
        text = f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return clipped(text, limit)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, or its type's name when it has none (a bare
    ``MemoryError``): one line to put in an error message, whatever the exception holds."""
    lines = str(exc).strip().splitlines()
    return clipped(lines[0].strip(), limit) if lines and lines[0].strip() else type(exc).__name__
