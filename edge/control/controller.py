"""Angle error -> gimbal rate command: PI with anti-windup, feed-forward, deadband and limits.

Every command leaves through ``GimbalController.update`` / ``stop``, where it is clamped in one
place: finite, within the rate limit, within the acceleration (slew) limit. Non-finite inputs
give a stop, never a wild command.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from edge.control.command import GimbalCommand

if TYPE_CHECKING:  # only names the settings' type: control sits below the config, which describes it
    from edge.control.settings import ControlConfig

__all__ = ["AxisController", "GimbalController"]


class AxisController:
    def __init__(self, cfg: ControlConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self.integral = 0.0
        self.output = 0.0
        self._last_error = None
        self.target_rate = 0.0
        self._history: list[tuple[float, float]] = []   # (time, commanded rate), for the delay
        self._t = 0.0

    def _output_delay_ago(self) -> float:
        """The rate the head was actually doing: the command sent latency_s ago."""
        cutoff = self._t - self.cfg.latency_s
        past = [rate for t, rate in self._history if t <= cutoff + 1e-9]
        return past[-1] if past else 0.0

    def _in_flight(self) -> float:
        """Degrees the head will still turn for commands sent within the last latency_s."""
        if not self.cfg.latency_s or not self._history:
            return 0.0
        cutoff = self._t - self.cfg.latency_s
        total = 0.0
        for (t0, rate), (t1, _) in zip(self._history, self._history[1:] + [(self._t, 0.0)]):
            lo = max(t0, cutoff)
            if t1 > lo:
                total += rate * (t1 - lo)
        return total

    def update(self, error_deg: float, dt: float) -> float:
        cfg = self.cfg
        self._t += dt
        # Target's angular rate = what the head did + how the error moved (filtered). The error we
        # see now reflects the command of latency_s ago, not the latest one.
        if self._last_error is not None and dt > 0:
            measured = self._output_delay_ago() + (error_deg - self._last_error) / dt
            self.target_rate += 0.3 * (measured - self.target_rate)
        self._last_error = error_deg
        # Latency compensation (a Smith predictor): where the target will be, relative to the head,
        # when this command lands: it moves on at its rate, and the head still executes the
        # commands already in flight.
        error = error_deg + self.target_rate * cfg.latency_s - self._in_flight()
        error = math.copysign(max(abs(error) - cfg.deadband_deg, 0.0), error)
        raw = cfg.kp * error + cfg.ki * self.integral + cfg.feedforward * self.target_rate
        saturated = abs(raw) >= cfg.max_rate_dps and math.copysign(1, raw) == math.copysign(1, error)
        if not saturated:  # conditional integration: no wind-up against the rate limit
            limit = cfg.integral_limit_deg_s
            self.integral = min(max(self.integral + error * dt, -limit), limit)
        return raw


class GimbalController:
    def __init__(self, cfg: ControlConfig) -> None:
        self.cfg = cfg
        self.yaw = AxisController(cfg)
        self.pitch = AxisController(cfg)
        self._last = GimbalCommand.stop()

    def clamp(self, yaw_rate: float, pitch_rate: float, dt: float) -> GimbalCommand:
        """The one place commands are limited."""
        cfg = self.cfg
        if not (math.isfinite(yaw_rate) and math.isfinite(pitch_rate) and math.isfinite(dt)):
            return self.stop()
        step = cfg.max_accel_dps2 * max(dt, 0.0)
        out = []
        for value, previous in ((yaw_rate, self._last.yaw_rate_dps), (pitch_rate, self._last.pitch_rate_dps)):
            value = min(max(value, -cfg.max_rate_dps), cfg.max_rate_dps)
            value = min(max(value, previous - step), previous + step)
            out.append(value)
        self._last = GimbalCommand(out[0], out[1], True)
        self.yaw.output, self.pitch.output = out
        for axis, value in ((self.yaw, out[0]), (self.pitch, out[1])):
            axis._history.append((axis._t, value))
            horizon = axis._t - cfg.latency_s - 1.0
            while len(axis._history) > 2 and axis._history[1][0] < horizon:
                axis._history.pop(0)
        # The head's measured gains and signs are applied last: the controller works in true rates.
        yaw = out[0] / cfg.rate_gain_pan * (-1 if cfg.invert_pan else 1)
        pitch = out[1] / cfg.rate_gain_tilt * (-1 if cfg.invert_tilt else 1)
        return GimbalCommand(yaw, pitch, True)

    def update(self, yaw_error_deg: float, pitch_error_deg: float, dt: float) -> GimbalCommand:
        """Errors are the target's angles from the optical axis (yaw right, pitch up), degrees."""
        if not (math.isfinite(yaw_error_deg) and math.isfinite(pitch_error_deg)) or dt <= 0:
            return self.stop()
        if self.cfg.roll_offset_deg:   # camera axes -> head axes
            r = math.radians(self.cfg.roll_offset_deg)
            yaw_error_deg, pitch_error_deg = (math.cos(r) * yaw_error_deg - math.sin(r) * pitch_error_deg,
                                              math.sin(r) * yaw_error_deg + math.cos(r) * pitch_error_deg)
        yaw = self.yaw.update(yaw_error_deg, dt)
        pitch = self.pitch.update(pitch_error_deg, dt)
        return self.clamp(yaw, pitch, dt)

    def stop(self) -> GimbalCommand:
        """Hold: zero rates, integrators and rate estimates cleared."""
        self.yaw.reset()
        self.pitch.reset()
        self._last = GimbalCommand.stop()
        return self._last
