"""Real child processes for the signal tests: start one, wait until it is ready, send it a real
signal, collect its exit status and output, and never leave it running when a test fails."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time


def edge_track_cmd() -> list[str]:
    """The command line, run by this interpreter from the tree on the path (no installed script)."""
    return [sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())"]


class Child:
    """A child process with its stdout and stderr piped (text). Use it as a context manager: on
    leaving, a child that is still running is killed and reaped.

    ``err`` is all of stderr: the lines read while waiting (``wait_for_line``) and the rest
    collected by ``finish``."""

    def __init__(self, argv, *, env=None, **popen) -> None:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        self.proc = subprocess.Popen(argv, text=True, env=None if env is None else dict(os.environ, **env), **popen)
        self.seen: list[str] = []
        self.out = ""
        self.rest = ""

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    @property
    def returncode(self):
        return self.proc.returncode

    @property
    def err(self) -> str:
        return "".join(self.seen) + self.rest

    def alive(self) -> None:
        """Fail with the child's stderr if it has exited."""
        if self.proc.poll() is not None:
            _, rest = self.proc.communicate()
            raise AssertionError(f"the child exited ({self.proc.returncode}): {self.err + rest}")

    def wait_for_line(self, text: str) -> bool:
        """Read stderr lines until one contains ``text``; False if stderr ended first."""
        for line in self.proc.stderr:
            self.seen.append(line)
            if text in line:
                return True
        return False

    def read_line(self, timeout: float = 20.0) -> str:
        """The next stdout line, or "" if none comes in ``timeout`` s (a hang guard, never a hung test)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else ""

    def wait_until(self, done, *, step=lambda: time.sleep(0.05), guard_s: float = 90.0) -> bool:
        """Call ``step()`` until ``done()``, failing if the child exits first; the time limit only
        guards against a hang (the caller asserts ``done()`` afterwards)."""
        deadline = time.monotonic() + guard_s
        while time.monotonic() < deadline and not done():
            self.alive()
            step()
        return done()

    def send(self, sig) -> None:
        self.proc.send_signal(sig)

    def finish(self, guard_s: float = 20.0) -> bool:
        """Collect the exit and the rest of the output; a child still running after ``guard_s``
        (a hang guard) is killed and False returned."""
        try:
            self.out, self.rest = self.proc.communicate(timeout=guard_s)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.rest = self.proc.communicate()
            return False

    def stop(self, sig, guard_s: float = 20.0) -> bool:
        """``send(sig)`` then ``finish(guard_s)``."""
        self.send(sig)
        return self.finish(guard_s)
