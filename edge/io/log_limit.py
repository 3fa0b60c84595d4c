"""Log lines that can repeat without bound (a flood of bad commands on a link, a sensor failing
every frame) let through a few per interval; the rest are counted, and the next line let through
says how many were left out. The journal keeps the news, not 240 copies of it a second."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

# Kinds of line remembered at once: a message built with an f-string is a new kind each time, so
# the table is bounded (the oldest kind is forgotten first).
MAX_KINDS = 256


class RateLimitedLog:
    """``logger``'s lines, at most ``burst`` of each kind per ``interval_s``. A kind is the level
    and the message template (``"denied %s"``), whatever its arguments: "denied 7" and
    "denied 8" are the same line repeated.

    Left-out lines are counted; the first line of that kind let through afterwards ends with
    "(N more like it in the last S s)". A flood that stops reports its count with the next line
    of that kind, not before (nothing is sent on a timer)."""

    def __init__(self, logger: logging.Logger, *, interval_s: float = 1.0, burst: int = 3,
                 clock=time.monotonic) -> None:
        if interval_s <= 0 or burst < 1:
            raise ValueError("interval_s must be > 0 and burst >= 1")
        self.logger = logger
        self.interval_s = interval_s
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> [window start, lines let through in it, lines left out since the last one let through, when
        # the first of those was left out]
        self._kinds: OrderedDict = OrderedDict()
        self.suppressed = 0   # all kinds, since start: for counters and tests

    def log(self, level: int, msg: str, *args) -> bool:
        """Log ``msg % args`` at ``level`` unless its kind is over its rate; True when let through."""
        if not self.logger.isEnabledFor(level):
            return False
        now = self._clock()
        key = (level, msg)
        with self._lock:
            entry = self._kinds.get(key)
            if entry is None:
                entry = self._kinds[key] = [now, 0, 0, now]
                if len(self._kinds) > MAX_KINDS:
                    self._kinds.popitem(last=False)
            else:
                self._kinds.move_to_end(key)
            if now - entry[0] >= self.interval_s:
                entry[0], entry[1] = now, 0
            if entry[1] >= self.burst:
                if entry[2] == 0:
                    entry[3] = now
                entry[2] += 1
                self.suppressed += 1
                return False
            entry[1] += 1
            left_out, since = entry[2], entry[3]
            entry[2] = 0
        if left_out:
            if args:   # logging formats msg % args: the note goes in as two more arguments
                msg, args = msg + " (%d more like it in the last %.0f s)", (*args, left_out, now - since)
            else:      # no arguments: logging leaves msg as it is, a % in it included
                msg = f"{msg} ({left_out} more like it in the last {now - since:.0f} s)"
        self.logger.log(level, msg, *args)
        return True

    def debug(self, msg: str, *args) -> bool:
        return self.log(logging.DEBUG, msg, *args)

    def info(self, msg: str, *args) -> bool:
        return self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args) -> bool:
        return self.log(logging.WARNING, msg, *args)

    def error(self, msg: str, *args) -> bool:
        return self.log(logging.ERROR, msg, *args)
