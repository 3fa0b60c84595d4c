"""A clock that moves only when a test (or the code under test, through the wait it was given)
moves it, so tests assert on times without measuring the wall clock."""

from __future__ import annotations


class FakeClock:
    """``clock()`` is the time in seconds (moved on by ``step`` after each read: a loop that reads it
    once a frame sees frames ``step`` apart), ``clock.ns()`` in nanoseconds; ``advance(s)`` moves it.
    ``wait(event, s)`` is a stand-in for ``event.wait(s)``: it records ``s``, moves the clock by it,
    then calls ``on_wait(event)`` (by default returns whether the event is set) without sleeping."""

    def __init__(self, start: float = 100.0, on_wait=None, step: float = 0.0) -> None:
        self.t, self.step = start, step
        self.waits: list[float] = []
        self.on_wait = on_wait or (lambda event: event.is_set())

    def __call__(self) -> float:
        self.t += self.step
        return self.t

    def ns(self) -> int:
        return round(self.t * 1e9)

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def wait(self, event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.t += seconds
        return self.on_wait(event)
