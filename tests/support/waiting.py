"""Waiting with a hang guard: a predicate polled until true, a call on a daemon thread. The time
limits keep a broken build from hanging the suite; they are never what a test asserts."""

from __future__ import annotations

import threading
import time


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def run_in_thread(fn, timeout: float = 30.0) -> bool:
    """fn() on a daemon thread; True when it returned within ``timeout`` (a hang fails the test
    instead of hanging it)."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()
