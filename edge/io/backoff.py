"""Retry timing for links that come and go (cameras, serial ports, MAVLink): the wait doubles
after each failure up to a cap and starts over after a success, so a device that is gone costs
a few attempts a minute and one that comes back is found quickly."""

from __future__ import annotations

import time


class Backoff:
    def __init__(self, initial_s: float, max_s: float, *, clock=time.monotonic) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self._clock = clock
        self._delay = initial_s
        self._next_attempt = clock()

    @property
    def delay_s(self) -> float:
        """The wait the next failure will schedule."""
        return self._delay

    def failed(self) -> float:
        """Record a failure; returns the wait before the next attempt (then the wait doubles)."""
        wait = self._delay
        self._next_attempt = self._clock() + wait
        self._delay = min(self._delay * 2, self.max_s)
        return wait

    def succeeded(self) -> None:
        self._delay = self.initial_s

    def due(self) -> bool:
        """True once the wait scheduled by the last failure has passed."""
        return self._clock() >= self._next_attempt
