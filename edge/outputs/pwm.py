"""Hobby servos on a pan-tilt bracket, driven from the SBC's pins through gpiozero.

Rates are integrated into angles (servos take positions), limited to the configured ranges. On a
Pi 5 use the lgpio pin factory; software PWM jitters, so a PCA9685 board (or the microcontroller
box stream) is the smooth option. Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

import time


class PwmServoOutput:
    name = "pwm"

    def __init__(self, cfg, control_cfg, *, pin_factory=None, clock=time.monotonic) -> None:
        try:
            from gpiozero import AngularServo
        except ImportError:
            from edge.errors import ConfigError

            raise ConfigError("the pwm output needs gpiozero: pip install 'edge-track[gimbal]'") from None
        if pin_factory is None and cfg.pin_factory:
            pin_factory = _factory(cfg.pin_factory)
        self.pan_limits = tuple(control_cfg.pan_limits_deg)
        self.tilt_limits = tuple(control_cfg.tilt_limits_deg)
        pan_range = (max(self.pan_limits[0], -90.0), min(self.pan_limits[1], 90.0))
        tilt_range = (max(self.tilt_limits[0], -90.0), min(self.tilt_limits[1], 90.0))
        self.pan_limits, self.tilt_limits = pan_range, tilt_range
        kwargs = {"pin_factory": pin_factory} if pin_factory is not None else {}
        self.pan = AngularServo(cfg.pan_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                max_pulse_width=0.0025, initial_angle=0.0, **kwargs)
        self.tilt = AngularServo(cfg.tilt_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                 max_pulse_width=0.0025, initial_angle=0.0, **kwargs)
        self.pan_deg = 0.0
        self.tilt_deg = 0.0
        self._clock = clock
        self._last = None
        self._closed = False

    def send(self, update) -> None:
        now = self._clock()
        dt = 0.0 if self._last is None else min(now - self._last, 0.2)
        self._last = now
        cmd = update.command
        if not cmd.active:
            return   # hold the current angles
        self.pan_deg = min(max(self.pan_deg + cmd.yaw_rate_dps * dt, self.pan_limits[0]), self.pan_limits[1])
        self.tilt_deg = min(max(self.tilt_deg + cmd.pitch_rate_dps * dt, self.tilt_limits[0]), self.tilt_limits[1])
        self.pan.angle = self.pan_deg
        self.tilt.angle = self.tilt_deg

    def heartbeat(self, now_ms: int, state: str) -> None:
        self._last = None

    def stop(self) -> None:
        self._last = None   # servos hold their last angle

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for servo in (self.pan, self.tilt):
                try:
                    servo.close()
                except Exception:
                    pass


def _factory(name: str):
    import importlib

    modules = {"lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"), "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
               "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"), "mock": ("gpiozero.pins.mock", "MockFactory")}
    if name not in modules:
        from edge.errors import ConfigError

        raise ConfigError(f"unknown pin_factory '{name}' (valid: {', '.join(modules)})")
    module, cls = modules[name]
    return getattr(importlib.import_module(module), cls)()
