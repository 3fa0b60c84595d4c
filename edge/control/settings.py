"""The controller's settings: the ``control:`` section of the device YAML (edge.config names it
with the other sections; ``calibrate`` writes a profile whose keys override it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.errors import quoted
from edge.schema import checked, num


def _ascending_pair(value, section) -> None:
    if len(value) != 2 or not value[0] < value[1]:
        raise ValueError(f"expected [min, max] with min < max, got {quoted(value)}")


@dataclass
class ControlConfig:
    mode: Literal["rate", "angle"] = "rate"
    kp: float = num(2.0, 0.0, 1000.0)              # (deg/s) per deg of error
    ki: float = num(0.2, 0.0, 1000.0)
    feedforward: float = num(1.0, 0.0, 2.0)         # fraction of the target's estimated angular rate
    deadband_deg: float = num(0.3, 0.0, 45.0)
    max_rate_dps: float = num(60.0, 0.1, 2000.0)
    max_accel_dps2: float = num(240.0, 0.1, 100000.0)
    integral_limit_deg_s: float = num(20.0, 0.0, 10000.0)
    invert_pan: bool = False
    invert_tilt: bool = False
    pan_limits_deg: list[float] = checked(_ascending_pair, default_factory=lambda: [-180.0, 180.0], max_items=2)
    tilt_limits_deg: list[float] = checked(_ascending_pair, default_factory=lambda: [-90.0, 90.0], max_items=2)
    latency_s: float = num(0.0, 0.0, 2.0)           # measured by `calibrate latency`
    # The head as measured by `calibrate gimbal`: real rate / commanded rate, camera roll on the head.
    rate_gain_pan: float = num(1.0, 0.05, 20.0)
    rate_gain_tilt: float = num(1.0, 0.05, 20.0)
    roll_offset_deg: float = num(0.0, -180.0, 180.0)
    # A gimbal profile YAML written by `edge-track calibrate gimbal|latency|pid`: its keys
    # override the ones above.
    profile: str = ""
