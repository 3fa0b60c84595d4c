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
from edge.outputs.driver import ServoHead
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


class PwmServoOutput(ServoHead):
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
            pan = AngularServo(cfg.pan_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                               max_pulse_width=0.0025, initial_angle=0.0, pin_factory=pin_factory)
            try:
                tilt = AngularServo(cfg.tilt_pin, min_angle=-90, max_angle=90, min_pulse_width=0.0005,
                                    max_pulse_width=0.0025, initial_angle=0.0, pin_factory=pin_factory)
            except Exception:
                pan.close()
                raise
        except Exception as exc:   # gpiozero's own errors: a pin in use, one without PWM, ...
            from edge.errors import ConfigError

            raise ConfigError(f"the pwm output cannot drive pins {cfg.pan_pin}/{cfg.tilt_pin}: "
                              f"{type(exc).__name__}: {_first_line(exc)}") from None
        self.pan, self.tilt = pan, tilt
        self.link = ServoPins(pan, tilt)
        self._standing, self._delivered_on = (0.0, 0.0), self.link.connection   # initial_angle


class ServoPins:
    """The two servos as the driver's link: a pin write raises (gpiozero's errors), it never
    loses what it was given, and it is never reopened."""

    connected = True
    connection = 1
    reconnects = write_errors = 0

    def __init__(self, pan, tilt) -> None:
        self.pan, self.tilt = pan, tilt

    def write(self, angles) -> bool:
        self.pan.angle, self.tilt.angle = angles
        return True

    def reopen_now(self) -> None:
        pass

    def close(self) -> None:
        for servo in (self.pan, self.tilt):
            try:
                servo.close()
            except Exception:
                pass


# gpiozero's factories by the config's names (edge.config.PIN_FACTORIES; a test holds the two alike).
FACTORIES = {"lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"), "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
             "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"), "mock": ("gpiozero.pins.mock", "MockFactory")}
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
