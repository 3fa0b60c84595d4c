"""Delay from a command to visible motion, from a step move of the head on a still target.

The head is held still, then a step rate is commanded at a known time. The target's apparent
position is tracked frame by frame; the onset of motion is found by fitting a line to the
displacement once it is clearly moving and extrapolating back to zero, which is robust to the
frame period and to the head's acceleration ramp. The measured delay is what the controller's
latency compensation and gain limits use (``control.latency_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.errors import EdgeTrackError


@dataclass(frozen=True)
class LatencyResult:
    capture_to_command_s: float    # frame captured -> command sent (tracking and control)
    command_to_motion_s: float     # command sent -> motion visible in the image
    trials: list

    @property
    def total_s(self) -> float:
        return self.capture_to_command_s + self.command_to_motion_s

    def profile(self) -> dict:
        return {"latency_s": round(self.total_s, 4)}


def _onset(samples, t0: float, base: tuple[float, float], min_deg: float, max_deg: float) -> float:
    t, d = [], []
    for s in samples:
        if not s.tracked:
            continue
        moved = math.hypot(s.yaw_deg - base[0], s.pitch_deg - base[1])
        if min_deg <= moved <= max_deg:
            t.append(s.t)
            d.append(moved)
    if len(t) < 3:
        raise EdgeTrackError("the target did not move clearly after the step: raise --rate or check the output")
    slope, intercept = np.polyfit(t, d, 1)
    if slope <= 0:
        raise EdgeTrackError("no motion found after the step")
    return float(-intercept / slope - t0)


def measure_latency(probe, rate_dps: float = 20.0, trials: int = 4, move_s: float = 0.6,
                    min_deg: float = 0.5, max_deg: float = 6.0) -> LatencyResult:
    delays, processing = [], []
    for i in range(trials):
        direction = 1.0 if i % 2 == 0 else -1.0      # alternate, so the target stays in view
        probe.run_for(0.3)
        base = probe.target()
        t0 = probe.command(direction * rate_dps, 0.0)
        processing.append(max(0.0, t0 - base.t))      # the newest frame's capture -> this command
        samples = probe.run_for(move_s)
        probe.stop()
        delays.append(_onset(samples, t0, (base.yaw_deg, base.pitch_deg), min_deg, max_deg))
    return LatencyResult(float(np.median(processing)), float(np.median(delays)), [round(d, 4) for d in delays])
