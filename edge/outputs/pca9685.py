"""Servos on a PCA9685 16-channel PWM board over I2C: hardware-timed pulses, no jitter.

Registers (NXP PCA9685 datasheet): MODE1 0x00 (bit 4 SLEEP, bit 5 AI auto-increment),
PRESCALE 0xFE = round(25 MHz / (4096 * f)) - 1 (written while asleep), LEDn_ON_L at 0x06 + 4n
(ON_L, ON_H, OFF_L, OFF_H; 12-bit counts out of 4096 per period).
"""

from __future__ import annotations

import time

from edge.control.integrator import RateIntegrator, servo_limits

MODE1, PRESCALE, LED0_ON_L = 0x00, 0xFE, 0x06
SLEEP, AUTO_INCREMENT, RESTART = 0x10, 0x20, 0x80
OSC_HZ = 25_000_000
FREQ_HZ = 50.0


class PCA9685:
    def __init__(self, bus, address: int = 0x40, freq_hz: float = FREQ_HZ) -> None:
        self.bus, self.address, self.freq_hz = bus, address, freq_hz
        prescale = round(OSC_HZ / (4096 * freq_hz)) - 1
        self.bus.write_byte_data(address, MODE1, SLEEP | AUTO_INCREMENT)
        self.bus.write_byte_data(address, PRESCALE, prescale)
        self.bus.write_byte_data(address, MODE1, AUTO_INCREMENT)
        time.sleep(0.0005)   # oscillator start-up
        self.bus.write_byte_data(address, MODE1, AUTO_INCREMENT | RESTART)

    def set_pulse_us(self, channel: int, pulse_us: float) -> None:
        counts = max(0, min(4095, round(pulse_us * 1e-6 * self.freq_hz * 4096)))
        self.bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * channel, [0, 0, counts & 0xFF, counts >> 8])

    def off(self, channel: int) -> None:
        self.bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * channel, [0, 0, 0, 0x10])  # full off


class Pca9685ServoOutput:
    """Same behaviour as the gpiozero servos (rates integrated into angles), pulses from the board."""

    name = "pca9685"

    def __init__(self, cfg, control_cfg, *, bus=None, clock=time.monotonic) -> None:
        if bus is None:
            try:
                from smbus2 import SMBus
            except ImportError:
                from edge.errors import ConfigError

                raise ConfigError("the pca9685 output needs smbus2: pip install smbus2") from None
            bus = SMBus(cfg.i2c_bus)
        self.board = PCA9685(bus, cfg.i2c_address)
        self.pan_ch, self.tilt_ch = cfg.pan_pin, cfg.tilt_pin
        self.angles = RateIntegrator(servo_limits(control_cfg.pan_limits_deg),
                                     servo_limits(control_cfg.tilt_limits_deg), clock=clock)
        self._closed = False
        self._write(self.angles.pan_deg, self.angles.tilt_deg)

    @property
    def pan_deg(self) -> float:
        return self.angles.pan_deg

    def _write(self, pan_deg: float, tilt_deg: float) -> None:
        for channel, deg in ((self.pan_ch, pan_deg), (self.tilt_ch, tilt_deg)):
            self.board.set_pulse_us(channel, 1500.0 + deg / 90.0 * 1000.0)

    def send(self, update) -> None:
        self._write(*self.angles.update(update.command))

    def heartbeat(self, now_ms: int, state: str) -> None:
        self.angles.hold()

    def stop(self) -> None:
        self.angles.hold()

    def recenter(self) -> None:
        self.angles.pan_deg = self.angles.tilt_deg = 0.0
        self._write(0.0, 0.0)

    def close(self) -> None:
        self._closed = True
