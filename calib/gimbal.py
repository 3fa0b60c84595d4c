"""Fit how the head really moves: axis signs, rate gains, and the camera's roll on the head.

With a still target in view, each axis is driven at a known rate for a known time, both ways. The
target moves opposite to the head in the image, so the head's rotation is minus the target's
displacement (in camera angles, from the tracked box). For a pan command the displacement should
be purely horizontal and for a tilt command purely vertical; its size over the commanded angle is
the gain, its sign the axis sign, and its direction off the axis the camera's roll. Moving both
ways and differencing cancels a slowly drifting target or head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.errors import EdgeTrackError


@dataclass(frozen=True)
class GimbalFit:
    invert_pan: bool
    invert_tilt: bool
    rate_gain_pan: float
    rate_gain_tilt: float
    roll_offset_deg: float
    roll_disagreement_deg: float   # pan-derived minus tilt-derived roll: large = a skewed or slipping axis

    def profile(self) -> dict:
        return {"invert_pan": self.invert_pan, "invert_tilt": self.invert_tilt,
                "rate_gain_pan": round(self.rate_gain_pan, 4), "rate_gain_tilt": round(self.rate_gain_tilt, 4),
                "roll_offset_deg": round(self.roll_offset_deg, 3)}


def _move(probe, yaw_rate: float, pitch_rate: float, seconds: float, settle_s: float):
    """-> (head rotation seen in the camera (yaw, pitch) per commanded degree)."""
    before = probe.target()
    start = probe.command(yaw_rate, pitch_rate)
    probe.run_for(seconds)
    end = probe.stop()
    probe.run_for(settle_s)
    after = probe.target()
    commanded = max(abs(yaw_rate), abs(pitch_rate)) * (end - start)
    # The head turned by minus the target's apparent displacement (camera frame).
    return ((before.yaw_deg - after.yaw_deg) / commanded, (before.pitch_deg - after.pitch_deg) / commanded)


def _wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def fit_gimbal(probe, rate_dps: float = 8.0, seconds: float = 1.0, settle_s: float = 0.5) -> GimbalFit:
    pan_plus = _move(probe, rate_dps, 0.0, seconds, settle_s)
    pan_minus = _move(probe, -rate_dps, 0.0, seconds, settle_s)
    tilt_plus = _move(probe, 0.0, rate_dps, seconds, settle_s)
    tilt_minus = _move(probe, 0.0, -rate_dps, seconds, settle_s)
    pan = ((pan_plus[0] - pan_minus[0]) / 2, (pan_plus[1] - pan_minus[1]) / 2)
    tilt = ((tilt_plus[0] - tilt_minus[0]) / 2, (tilt_plus[1] - tilt_minus[1]) / 2)
    pan_size, tilt_size = math.hypot(*pan), math.hypot(*tilt)      # degrees moved per degree commanded
    if pan_size < 0.1 or tilt_size < 0.1:
        raise EdgeTrackError(f"the head hardly moved ({pan_size:.2f} / {tilt_size:.2f} of the commanded angle): "
                             f"check the output, its port and the gimbal's mode")
    # Direction of a positive pan in camera axes: 0 deg = right. Of a positive tilt: 90 deg = up.
    pan_dir = math.degrees(math.atan2(pan[1], pan[0]))
    tilt_dir = math.degrees(math.atan2(tilt[1], tilt[0]))
    invert_pan = abs(_wrap(pan_dir)) > 90.0
    invert_tilt = abs(_wrap(tilt_dir - 90.0)) > 90.0
    # Camera roll on the head: where the head's axes point in the image, signs removed.
    roll_pan = _wrap(pan_dir - (180.0 if invert_pan else 0.0))
    roll_tilt = _wrap(tilt_dir - (-90.0 if invert_tilt else 90.0))
    # The controller rotates camera errors by +roll into head axes, so the head's +x axis, seen
    # at angle r in the image, needs a roll offset of -r.
    roll = -(roll_pan + roll_tilt) / 2
    return GimbalFit(invert_pan=invert_pan, invert_tilt=invert_tilt, rate_gain_pan=pan_size,
                     rate_gain_tilt=tilt_size, roll_offset_deg=roll,
                     roll_disagreement_deg=_wrap(roll_pan - roll_tilt))
