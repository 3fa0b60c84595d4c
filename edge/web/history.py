"""The last minute of what an operator tunes a head by, for the page's charts.

Sampled from the loop's published stats off the loop's thread (the loop is not slowed by it):
score, the target's angle from the optical axis (the error the controller is fed, through the
camera model: calibration when present, else the field of view), the commanded pan/tilt rates, fps
and capture-to-command latency. Ten times a second while a page asks for it, twice a second when
none has for a few seconds: a page opened later still finds the minute there (at the lower rate),
and an unwatched service on a 2-core device does not wake forty times more than it needs to.
"""

from __future__ import annotations

import collections
import math
import threading
import time

WINDOW_S = 60.0
PERIOD_S = 0.1          # while a page is watching
IDLE_PERIOD_S = 0.5     # while none is: still the minute for a page opened later
WATCHED_FOR_S = 5.0     # a page that has not asked for this long has gone (it asks every 0.5 s)
# name -> decimals kept (the page draws them, it does not need 17 digits)
SERIES = {"score": 3, "error_yaw_deg": 2, "error_pitch_deg": 2, "yaw_dps": 2, "pitch_dps": 2, "fps": 1,
          "latency_ms": 1}


def _round(value, digits: int):
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def sample_of(loop) -> dict | None:
    """One sample of the loop's stats; None before the loop has any (a console without a camera yet)."""
    st = getattr(loop, "stats", None)
    if st is None or not getattr(st, "frames", 0):
        return None
    state, box, cam = st.state, st.box, getattr(loop, "camera_model", None)
    yaw = pitch = None
    if state == "TRACKING" and box is not None and cam is not None:
        x, y, w, h = box
        yaw, pitch = cam.angles_deg(x + w / 2, y + h / 2)
    command = st.command
    values = {"score": None if state == "IDLE" else st.score, "error_yaw_deg": yaw, "error_pitch_deg": pitch,
              "yaw_dps": command.yaw_rate_dps, "pitch_dps": command.pitch_rate_dps, "fps": st.fps,
              "latency_ms": st.latency_ms}
    return {"state": state, **{k: _round(v, SERIES[k]) for k, v in values.items()}}


class TelemetryHistory:
    """A rolling ``window_s`` of samples; ``since(t)`` gives the newer ones, column by column."""

    def __init__(self, loop, *, window_s: float = WINDOW_S, period_s: float = PERIOD_S, clock=time.monotonic) -> None:
        self.loop, self.window_s, self.period_s, self.clock = loop, float(window_s), float(period_s), clock
        self._t0 = clock()
        self._asked_at: float | None = None
        self._samples: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-history", daemon=True)

    def now(self) -> float:
        """Seconds since the console started: the page's time axis (no wall clock to disagree on)."""
        return round(self.clock() - self._t0, 3)

    def sample(self) -> None:
        try:
            values = sample_of(self.loop)
        except Exception:          # a half-updated stats object: this tick is skipped, the next one comes
            return
        if values is None:
            return
        t = self.now()
        with self._lock:
            self._samples.append((t, values))
            while self._samples and self._samples[0][0] < t - self.window_s:
                self._samples.popleft()

    def next_wait(self) -> float:
        """Seconds to the next sample: ``period_s`` while a page asks, IDLE_PERIOD_S (or
        ``period_s`` if longer) when none did within WATCHED_FOR_S."""
        asked = self._asked_at
        if asked is not None and self.clock() - asked < WATCHED_FOR_S:
            return self.period_s
        return max(self.period_s, IDLE_PERIOD_S)

    def since(self, after: float) -> dict:
        """The samples newer than ``after`` (s on this console's clock). An ``after`` beyond now
        comes from a page that was open before the service restarted (its clock starts at 0
        again): it gets the whole minute."""
        self._asked_at = self.clock()
        now = self.now()
        if after > now:
            after = -math.inf
        with self._lock:
            rows = [(t, v) for t, v in self._samples if t > after]
        out = {"now": now, "window_s": self.window_s, "t": [t for t, _ in rows],
               "state": [v["state"] for _, v in rows]}
        for name in SERIES:
            out[name] = [v[name] for _, v in rows]
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.next_wait()):
            self.sample()

    def start(self) -> "TelemetryHistory":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
