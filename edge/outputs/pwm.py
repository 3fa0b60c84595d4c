"""Hobby servos on a pan-tilt bracket, driven from the SBC's pins through gpiozero.

Rates are integrated into angles (servos take positions), limited to the configured ranges. On a
Pi 5 use the lgpio pin factory; software PWM jitters, so a PCA9685 board (or the microcontroller
box stream) is the smooth option. Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

import time

from edge.control.integrator import RateIntegrator, servo_limits


class PwmServoOutput:
    name = "pwm"

    def __init__(self, cfg, control_cfg, *, pin_factory=None, clock=time.monotonic) -> None:
        try:
            from gpiozero import AngularServo
        except ImportError:
            from edge.io.libraries import GPIOZERO

            raise GPIOZERO.missing("the pwm output") from None
        if pin_factory is None and cfg.pin_factory:
            pin_factory = _factory(cfg.pin_factory)
        self.angles = RateIntegrator(servo_limits(control_cfg.pan_limits_deg),
                                     servo_limits(control_cfg.tilt_limits_deg), clock=clock)
        kwargs = {"pin_factory": pin_factory} if pin_factory is not None else {}
        self.pan = AngularServo(cfg.pan_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                max_pulse_width=0.0025, initial_angle=0.0, **kwargs)
        self.tilt = AngularServo(cfg.tilt_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                 max_pulse_width=0.0025, initial_angle=0.0, **kwargs)
        self._closed = False

    @property
    def pan_deg(self) -> float:
        return self.angles.pan_deg

    @property
    def tilt_deg(self) -> float:
        return self.angles.tilt_deg

    def _set(self, pan_deg: float, tilt_deg: float) -> bool:
        self.pan.angle, self.tilt.angle = pan_deg, tilt_deg
        return True

    def send(self, update) -> None:
        # A pin write that raises leaves the angles where the servos last got them (no jump later).
        self.angles.advance(update.command, self._set)

    def heartbeat(self, now_ms: int, state: str) -> None:
        self.angles.hold()

    def stop(self) -> None:
        self.angles.hold()   # servos hold their last angle

    def recenter(self) -> None:
        self.angles.pan_deg = self.angles.tilt_deg = 0.0
        self.pan.angle = self.tilt.angle = 0.0

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
