"""The signals that end the service, all handled alike: TERM (``systemctl stop``, ``kill``), INT
(Ctrl-C), HUP (the terminal or ssh session went away) and QUIT (Ctrl-\\).

The handler only records the signal in a plain attribute; whoever runs polls it (``is_set()``,
``check()``): the loop stops every output and the service closes what it opened, and the process
exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, which the systemd unit lists
in SuccessExitStatus, so ``systemctl stop`` stays a clean stop). Nothing is raised from the handler:
a library's bare ``except:`` (pymavlink's mavutil wraps an import in one) cannot swallow a stop, and
start-up checks the flag after every step. The handler takes no lock either: it runs in the main
thread between two bytecodes, possibly while that thread holds the stop event's lock (inside
``stop.set()``), and ``Event.set()`` from there would wait for that lock forever.

A second stop signal (a shutdown that hangs, or Ctrl-C pressed again) restores the default action
and raises that signal again: the process dies by it at once (exit -n, not 128 + n). The outputs
were told to stop only if the first signal's shutdown got that far.

The command line installs the same handler first thing (``hold_early``), before its imports
(0.3-0.5 s on a Pi), so a signal then is recorded too, not the default action (SIGQUIT would dump
core): a command that handles stop signals takes it over (``StopSignals`` stops at its first
check), any other exits 128 + n at once (``release_early``).

A signal the parent set to be ignored stays ignored (``nohup`` ignores HUP; a script's ``cmd &``
ignores INT and QUIT), as Python itself leaves an ignored SIGINT alone.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


# What came before a StopSignals block: the first signal, and the handlers hold_early replaced.
_early: dict = {"signum": None, "previous": {}}


def _on_early_signal(signum, _frame) -> None:
    if _early["signum"] is None:
        _early["signum"] = signum
        return
    signal.signal(signum, signal.SIG_DFL)   # a second one: as StopSignals does, die by it
    signal.raise_signal(signum)


def hold_early() -> None:
    """Record the stop signals from now on (main thread only), until ``release_early`` or a
    ``StopSignals`` block takes them over. What was there before comes back at ``release_early``."""
    if threading.current_thread() is not threading.main_thread() or _early["previous"]:
        return
    _early["signum"] = None
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            _early["previous"][sig] = signal.signal(sig, _on_early_signal)


def take_early() -> int | None:
    """The signal that came since ``hold_early`` (None if none), taken: the handlers stay."""
    signum, _early["signum"] = _early["signum"], None
    return signum


def release_early() -> int | None:
    """Put back the handlers ``hold_early`` replaced; the signal that came meanwhile (and that no
    StopSignals block took over), or None."""
    signum, _early["signum"] = _early["signum"], None
    previous, _early["previous"] = _early["previous"], {}
    for sig, handler in previous.items():
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)
    return signum


class Stopped(Exception):
    """Raised by ``StopSignals.check()`` once a stop signal came (or ``stop`` was set)."""


class StopSignals:
    """``with StopSignals(stop) as signals:`` the stop signals set ``signals.signum``; ``is_set()``
    is true once one came or ``stop`` (a threading.Event others may set: a window's 'q') was set.
    The previous handlers are back after the block. Signals can only be handled in the main
    thread: elsewhere this installs nothing and ``stop`` is the caller's alone."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop if stop is not None else threading.Event()
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._on_signal)
            if _early["signum"] is not None:   # it came during the imports: this block stops at its first check
                self.signum, _early["signum"] = _early["signum"], None
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            # None: a handler not installed from Python (there is none to give back): the default.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _on_signal(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum
            return
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    def is_set(self) -> bool:
        """True once a stop signal came or ``stop`` was set (what a loop polls, as an Event's)."""
        return self.signum is not None or self.stop.is_set()

    def check(self) -> None:
        """Raise Stopped if a stop signal came: call it after every step of a start-up."""
        if self.is_set():
            raise Stopped(self.name or "stop requested")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def exit_status(self) -> int:
        """0 without a signal, else 128 + its number (what a shell reports for a process it ended)."""
        return 0 if self.signum is None else 128 + self.signum
