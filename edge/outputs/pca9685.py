"""Servos on a PCA9685 16-channel PWM board over I2C: hardware-timed pulses, no jitter.

Registers (NXP PCA9685 datasheet): MODE1 0x00 (bit 4 SLEEP, bit 5 AI auto-increment),
PRESCALE 0xFE = round(25 MHz / (4096 * f)) - 1 (written while asleep), LEDn_ON_L at 0x06 + 4n
(ON_L, ON_H, OFF_L, OFF_H; 12-bit counts out of 4096 per period).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from edge.control.integrator import RateIntegrator, servo_limits
from edge.io.libraries import SMBUS2
from edge.outputs.base import OutputConfig, OutputKind, output_type
from edge.outputs.driver import ServoHead
from edge.schema import num

log = logging.getLogger("edge.outputs.pca9685")

MODE1, PRESCALE, LED0_ON_L = 0x00, 0xFE, 0x06
SLEEP, AUTO_INCREMENT, RESTART = 0x10, 0x20, 0x80
OSC_HZ = 25_000_000
FREQ_HZ = 50.0


@dataclass
class Pca9685Config(OutputConfig):
    type: str = output_type("pca9685")
    pan_pin: int = num(12, 0, 64)      # the board's channels (0-15)
    tilt_pin: int = num(13, 0, 64)
    i2c_bus: int = num(1, 0, 32)
    i2c_address: int = num(0x40, 0, 127)


class PCA9685:
    def __init__(self, bus, address: int = 0x40, freq_hz: float = FREQ_HZ) -> None:
        """Nothing is written yet: ``start`` programs the chip (the output calls it until it answers)."""
        self.bus, self.address, self.freq_hz = bus, address, freq_hz

    def start(self) -> None:
        """Program the PWM frequency and wake the chip: at power-on it sleeps, at 200 Hz."""
        prescale = round(OSC_HZ / (4096 * self.freq_hz)) - 1
        self.bus.write_byte_data(self.address, MODE1, SLEEP | AUTO_INCREMENT)
        self.bus.write_byte_data(self.address, PRESCALE, prescale)
        self.bus.write_byte_data(self.address, MODE1, AUTO_INCREMENT)
        time.sleep(0.0005)   # oscillator start-up
        self.bus.write_byte_data(self.address, MODE1, AUTO_INCREMENT | RESTART)

    def set_pulse_us(self, channel: int, pulse_us: float) -> None:
        counts = max(0, min(4095, round(pulse_us * 1e-6 * self.freq_hz * 4096)))
        self.bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * channel, [0, 0, counts & 0xFF, counts >> 8])

    def off(self, channel: int) -> None:
        self.bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * channel, [0, 0, 0, 0x10])  # full off


class Pca9685ServoOutput(ServoHead):
    """Same behaviour as the gpiozero servos (rates integrated into angles), pulses from the board.

    The board keeps pulsing the last set-points by itself. A bus write that fails (board unpowered,
    cable off) is counted and does not count as delivered: the angles stay where the board last got
    them, and the next call programs the chip again (a board that lost power wakes asleep) and gives
    it the current set-points. A board that does not answer at start-up is lost the same way: the
    output starts and programs it once it answers (a bus that cannot be opened is a ConfigError)."""

    name = "pca9685"

    def __init__(self, cfg, control_cfg, *, bus=None, clock=time.monotonic) -> None:
        if bus is None:
            try:
                from smbus2 import SMBus
            except ImportError:
                raise SMBUS2.missing("the pca9685 output") from None
            try:
                bus = SMBus(cfg.i2c_bus)
            except OSError as exc:   # no /dev/i2c-N (I2C not enabled, wrong bus), no permission
                from edge.errors import ConfigError

                raise ConfigError(f"pca9685: cannot open I2C bus {cfg.i2c_bus} (/dev/i2c-{cfg.i2c_bus}): "
                                  f"{exc.strerror or exc}") from None
        self.bus = bus
        self.board = PCA9685(bus, cfg.i2c_address)
        self.link = BoardLink(self.board, cfg.pan_pin, cfg.tilt_pin)
        self.angles = RateIntegrator(servo_limits(control_cfg.pan_limits_deg),
                                     servo_limits(control_cfg.tilt_limits_deg), clock=clock)
        self._set(self.angles.pan_deg, self.angles.tilt_deg)


class BoardLink:
    """The board as the driver's link: ``connected`` while it answers, and a new ``connection``
    each time it answers again, programmed afresh (a board that lost power wakes asleep, without
    its set-points)."""

    def __init__(self, board: PCA9685, pan_ch: int, tilt_ch: int) -> None:
        self.board, self.pan_ch, self.tilt_ch = board, pan_ch, tilt_ch
        self.connected = False     # not programmed yet: the first write starts the chip
        self.connection = 0
        self._answered = False     # it has answered once: a loss after that is a reconnect
        self.write_errors = 0
        self.reconnects = 0

    def write(self, angles) -> bool:
        """True once the board has both set-points (degrees)."""
        try:
            if not self.connected:
                self.board.start()
            for channel, deg in zip((self.pan_ch, self.tilt_ch), angles):
                self.board.set_pulse_us(channel, 1500.0 + deg / 90.0 * 1000.0)
        except OSError as exc:   # smbus2: EREMOTEIO (no ACK), EIO, ETIMEDOUT
            self.write_errors += 1
            if self.connected or self.write_errors == 1:   # once per loss, and at start-up
                log.warning("pca9685 at 0x%02x %s (%s); retrying on every frame", self.board.address,
                            "lost" if self._answered else "does not answer", exc)
            self.connected = False
            return False
        if not self.connected:
            self.connected = True
            self.connection += 1
            if self._answered:
                self.reconnects += 1
                log.info("pca9685 at 0x%02x is back", self.board.address)
            self._answered = True
        return True

    def reopen_now(self) -> None:
        """Nothing to reopen: the next write programs the chip again."""

    def close(self) -> None:
        try:
            self.board.bus.close()
        except Exception:
            pass


PCA9685_BOARD = OutputKind(Pca9685Config, Pca9685ServoOutput, needs=SMBUS2)
