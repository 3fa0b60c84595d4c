"""Controller gains from the measured head: a Ziegler-Nichols start, reduced for the delay.

The tracked head is an integrating process with a delay: the pointing angle is the integral of
the commanded rate (times the measured gain K, ``calibrate gimbal``) seen L seconds later
(``calibrate latency`` plus half a frame). For G(s) = K exp(-L s) / s:

- Ziegler-Nichols (reaction-curve) PI start: kp = 0.9 / (K L), integral time 3.33 L;
- the suggestion: SIMC (Skogestad 2003) with the closed-loop time constant tau_c = L:
  kp = 1 / (K (tau_c + L)), integral time 4 (tau_c + L). Half the ZN gain, with room for the delay.

Gains are then checked in the simulator with the same delay and gain before they are written.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PidSuggestion:
    kp: float
    ki: float
    zn_kp: float
    zn_ki: float
    delay_s: float

    def profile(self) -> dict:
        return {"kp": round(self.kp, 4), "ki": round(self.ki, 4)}


def suggest_gains(delay_s: float, gain: float = 1.0, frame_period_s: float = 1 / 30) -> PidSuggestion:
    L = max(delay_s, 0.0) + frame_period_s / 2      # sampling adds half a period on average
    zn_kp = 0.9 / (gain * L)
    zn_ti = 3.33 * L
    tau_c = L
    kp = 1.0 / (gain * (tau_c + L))
    ti = 4.0 * (tau_c + L)
    return PidSuggestion(kp=kp, ki=kp / ti, zn_kp=zn_kp, zn_ki=zn_kp / zn_ti, delay_s=L)
