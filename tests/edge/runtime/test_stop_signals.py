"""edge.runtime.signals on a real child process with real signals: the handler cannot deadlock
against the stop event's lock, and a second stop signal ends a hung shutdown at once."""

import signal
import sys

import pytest

from support.paths import REPO
from support.processes import Child

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


def child(script):
    return Child([sys.executable, "-c", script], env={"PYTHONPATH": str(REPO)})


def test_a_signal_inside_the_stop_events_lock_does_not_deadlock():
    with child(INSIDE_SET) as proc:
        assert proc.finish(), f"the signal handler deadlocked on the stop event's lock: {proc.out!r}"
    assert proc.returncode == 0, proc.err
    assert proc.out.split("\n")[:2] == [f"handled {int(signal.SIGTERM)}", "stopped"], (proc.out, proc.err)


@pytest.mark.parametrize("first,second", [("SIGINT", "SIGINT"), ("SIGTERM", "SIGINT"), ("SIGHUP", "SIGTERM")])
def test_a_second_stop_signal_ends_a_hung_shutdown_by_that_signal(first, second):
    with child(HUNG_SHUTDOWN) as proc:
        assert proc.read_line() == "ready\n"
        proc.send(getattr(signal, first))
        assert proc.read_line() == "shutting down\n"
        assert proc.stop(getattr(signal, second)), "a second signal did not end the hung shutdown"
    assert proc.returncode == -getattr(signal, second)
