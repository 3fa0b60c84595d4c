"""The command every gimbal output executes, in a module of its own: the controller makes it,
the outputs and the loop carry it, and none of them has to import the others for it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GimbalCommand:
    """What the gimbal outputs execute. ``active`` False means stop / hold."""

    yaw_rate_dps: float
    pitch_rate_dps: float
    active: bool

    @classmethod
    def stop(cls) -> "GimbalCommand":
        return cls(0.0, 0.0, False)
