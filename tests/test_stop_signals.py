"""edge.runtime.signals on a real child process with real signals: the handler cannot deadlock
against the stop event's lock, and a second stop signal ends a hung shutdown at once."""

import os
import select
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INSIDE_SET = """
import signal, threading
from edge.runtime.signals import Stopped, StopSignals

stop = threading.Event()
with StopSignals(stop) as signals:
    # The main thread is inside stop.set() (which holds the event's lock) when the signal lands.
    with stop._cond:
        signal.raise_signal(signal.SIGTERM)
        print("handled", signals.signum, flush=True)
    try:
        signals.check()
        print("not stopped", flush=True)
    except Stopped:
        print("stopped", flush=True)
"""

HUNG_SHUTDOWN = """
import sys, time
from edge.runtime.signals import Stopped, StopSignals

with StopSignals() as signals:
    print("ready", flush=True)
    try:
        while True:
            signals.check()
            time.sleep(0.01)
    except Stopped:
        pass
    print("shutting down", flush=True)
    time.sleep(60)                  # an output's close that never returns
print("finished", flush=True)
"""


def read_line(proc, timeout: float = 20.0) -> str:
    """The child's next output line, or "" if none comes in ``timeout`` s (never a hung test)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def child(script):
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=HERE))


def test_a_signal_inside_the_stop_events_lock_does_not_deadlock():
    proc = child(INSIDE_SET)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the signal handler deadlocked on the stop event's lock: {out!r}")
    assert proc.returncode == 0, err
    assert out.split("\n")[:2] == [f"handled {int(signal.SIGTERM)}", "stopped"], (out, err)


@pytest.mark.parametrize("first,second", [("SIGINT", "SIGINT"), ("SIGTERM", "SIGINT"), ("SIGHUP", "SIGTERM")])
def test_a_second_stop_signal_ends_a_hung_shutdown_by_that_signal(first, second):
    proc = child(HUNG_SHUTDOWN)
    try:
        assert read_line(proc) == "ready\n"
        proc.send_signal(getattr(signal, first))
        assert read_line(proc) == "shutting down\n"
        proc.send_signal(getattr(signal, second))
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("a second signal did not end the hung shutdown")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -getattr(signal, second)
