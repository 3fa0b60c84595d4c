"""Hold what libraries print while models are built, and show it only when a build fails."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def libraries_quiet():
    """Hold what third-party code prints while models are built (progress bars, INFO lines from
    C++ libraries, deprecation notices) in a file, and show it only when the build fails: the
    bench's own lines on stderr and its table on stdout then stand alone. At the file descriptors,
    so output from C++ is held too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    failed = True
    with tempfile.TemporaryFile() as held, open(held.fileno(), "w", encoding="utf-8", closefd=False) as text:
        os.dup2(held.fileno(), 1)
        os.dup2(held.fileno(), 2)
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):   # sys.stdout may not be fd 1
                yield
            failed = False
        finally:
            text.flush()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:   # not an engine the bench skips with its reason: the libraries' words may say why
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace"))
                sys.stderr.flush()
