"""Hobby servos on a pan-tilt bracket, driven from the SBC's pins through gpiozero.

Rates are integrated into angles (servos take positions), limited to the configured ranges. On a
Pi 5 use the lgpio pin factory; software PWM jitters, so a PCA9685 board (or the microcontroller
box stream) is the smooth option. Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.control.integrator import RateIntegrator, servo_limits
from edge.io.libraries import GPIOZERO
from edge.outputs.base import OutputConfig, OutputKind, output_type
from edge.schema import checked, num, one_of

# gpiozero's factories by the names the config gives (pin_factory).
FACTORIES = {"lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"), "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
             "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"), "mock": ("gpiozero.pins.mock", "MockFactory")}


@dataclass
class PwmConfig(OutputConfig):
    type: str = output_type("pwm")
    pan_pin: int = num(12, 0, 64)      # BCM numbering
    tilt_pin: int = num(13, 0, 64)
    # gpiozero pin factory; empty: gpiozero picks the first that works
    pin_factory: str = checked(one_of(lambda: FACTORIES, empty_ok=True), default="")


class PwmServoOutput:
    name = "pwm"

    def __init__(self, cfg, control_cfg, *, pin_factory=None, clock=time.monotonic) -> None:
        try:
            from gpiozero import AngularServo
        except ImportError:
            raise GPIOZERO.missing("the pwm output") from None
        if pin_factory is None:
            pin_factory = pin_factory_for(cfg.pin_factory)
        self.angles = RateIntegrator(servo_limits(control_cfg.pan_limits_deg),
                                     servo_limits(control_cfg.tilt_limits_deg), clock=clock)
        try:
            self.pan = AngularServo(cfg.pan_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                    max_pulse_width=0.0025, initial_angle=0.0, pin_factory=pin_factory)
            self.tilt = AngularServo(cfg.tilt_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                     max_pulse_width=0.0025, initial_angle=0.0, pin_factory=pin_factory)
        except Exception as exc:   # gpiozero's own errors: a pin in use, one without PWM, ...
            if getattr(self, "pan", None) is not None:
                self.pan.close()
            from edge.errors import ConfigError

            raise ConfigError(f"the pwm output cannot drive pins {cfg.pan_pin}/{cfg.tilt_pin}: "
                              f"{type(exc).__name__}: {_first_line(exc)}") from None
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


_NO_PINS = ("on a Raspberry Pi install python3-lgpio with apt and make the venv with --system-site-packages "
            "(pin_factory: lgpio); pin_factory: mock tries the loop without pins")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def pin_factory_for(name: str):
    """The gpiozero pin factory ``name`` names ("": gpiozero's own first working one), created
    as the output will use it (no pin is claimed), or one ConfigError line saying what to install."""
    import importlib
    import warnings

    from edge.errors import ConfigError

    if name and name not in FACTORIES:
        raise ConfigError(f"unknown pin_factory '{name}' (valid: {', '.join(FACTORIES)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # gpiozero warns for each default factory it falls back from
            if name == "mock":
                # With its PWM pins: MockFactory's default pins have none, and AngularServo needs them.
                from gpiozero.pins.mock import MockFactory, MockPWMPin

                return MockFactory(pin_class=MockPWMPin)
            if name:
                module, cls = FACTORIES[name]
                return getattr(importlib.import_module(module), cls)()
            from gpiozero import Device

            return Device.ensure_pin_factory()
    except Exception as exc:
        which = f"pin_factory {name} does not work" if name else "none of gpiozero's pin factories works"
        raise ConfigError(f"{which} here ({type(exc).__name__}: {_first_line(exc)}): {_NO_PINS}") from None


def _check_pins(cfg: PwmConfig) -> None:
    pin_factory_for(cfg.pin_factory)


PWM = OutputKind(PwmConfig, PwmServoOutput, needs=GPIOZERO, check=_check_pins)
