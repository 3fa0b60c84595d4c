"""Rate commands -> angle set-points, for heads that take positions (servos, angle-mode gimbals).

The step is capped (``max_step_s``) so a stall in the loop never becomes a jump, and the angles
stay inside the configured limits. A stop holds the current angles.
"""

from __future__ import annotations

import time


class RateIntegrator:
    def __init__(self, pan_limits, tilt_limits, *, clock=time.monotonic, max_step_s: float = 0.2) -> None:
        self.pan_limits, self.tilt_limits = tuple(pan_limits), tuple(tilt_limits)
        self.pan_deg = min(max(0.0, self.pan_limits[0]), self.pan_limits[1])
        self.tilt_deg = min(max(0.0, self.tilt_limits[0]), self.tilt_limits[1])
        self._clock, self._max_step = clock, max_step_s
        self._last = None

    def update(self, command) -> tuple[float, float]:
        """Advance by one command; returns (pan, tilt) set-points in degrees."""
        now = self._clock()
        dt = 0.0 if self._last is None else min(max(now - self._last, 0.0), self._max_step)
        self._last = now
        if command.active:
            self.pan_deg = min(max(self.pan_deg + command.yaw_rate_dps * dt, self.pan_limits[0]), self.pan_limits[1])
            self.tilt_deg = min(max(self.tilt_deg + command.pitch_rate_dps * dt, self.tilt_limits[0]),
                                self.tilt_limits[1])
        return self.pan_deg, self.tilt_deg

    def advance(self, command, write) -> bool:
        """``update`` whose step counts only once the head has it: ``write(pan, tilt)`` returns True
        when the set-points were delivered. When it returns False or raises, the set-points go back
        to those the head last got, so a link that comes back resumes from there instead of jumping
        to wherever the commands sent meanwhile would have taken it."""
        before = (self.pan_deg, self.tilt_deg)
        delivered = False
        try:
            delivered = bool(write(*self.update(command)))
        finally:
            if not delivered:
                self.pan_deg, self.tilt_deg = before
                self._last = None
        return delivered

    def hold(self) -> None:
        """No time passes for the integrator until the next command (stop, heartbeat)."""
        self._last = None


def servo_limits(limits) -> tuple[float, float]:
    """Configured limits cut to a hobby servo's -90..90 degrees."""
    return (max(limits[0], -90.0), min(limits[1], 90.0))
