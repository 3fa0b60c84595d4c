"""MicroPython receiver of edge-track's binary box stream, driving a pan servo and a tilt servo.

Copy to the board as main.py (Raspberry Pi Pico: UART0 on GP0/GP1, servos on GP15/GP14).
The parser is plain Python, so CPython tests run it against the host's encoder. The servos move
only on TRACKING frames and hold on LOST/IDLE; with no valid frame for TIMEOUT_MS they hold too.
"""

SYNC0, SYNC1 = 0xAA, 0x55
LENGTH = 26
FRAME = 31
TIMEOUT_MS = 500
GAIN_DEG = 0.8        # degrees of servo travel per unit of normalised centre error, per frame


def crc16_ccitt(data, crc=0xFFFF):
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _i16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


class Receiver:
    def __init__(self):
        self.buf = bytearray()
        self.crc_errors = 0

    def feed(self, data):
        """Returns a list of (type, seq, state, nx, ny, score) for every valid frame."""
        self.buf += data
        out = []
        while True:
            i = 0
            while i + 1 < len(self.buf) and not (self.buf[i] == SYNC0 and self.buf[i + 1] == SYNC1):
                i += 1
            if i:
                self.buf = self.buf[i:]
            if len(self.buf) < FRAME:
                return out
            f = bytes(self.buf[:FRAME])
            if f[2] != LENGTH or _u16(f, 29) != crc16_ccitt(f[2:29]):
                self.crc_errors += 1
                self.buf = self.buf[1:]
                continue
            self.buf = self.buf[FRAME:]
            out.append((f[4], _u16(f, 5), f[11], _i16(f, 20) / 32767, _i16(f, 22) / 32767, f[28] / 255))


class PanTilt:
    """Integrates the centre error into two servo angles (-90..90)."""

    def __init__(self, set_pan, set_tilt):
        self.set_pan, self.set_tilt = set_pan, set_tilt
        self.pan = 0.0
        self.tilt = 0.0

    def apply(self, state, nx, ny):
        if state != 1:      # only TRACKING moves the servos
            return
        self.pan = max(-90.0, min(90.0, self.pan + GAIN_DEG * nx))
        self.tilt = max(-90.0, min(90.0, self.tilt - GAIN_DEG * ny))
        self.set_pan(self.pan)
        self.set_tilt(self.tilt)


def main():  # pragma: no cover - runs on the board
    import time

    from machine import PWM, UART, Pin

    def servo(pin):
        pwm = PWM(Pin(pin))
        pwm.freq(50)
        return lambda deg: pwm.duty_ns(int(1_500_000 + deg / 90.0 * 1_000_000))

    uart = UART(0, baudrate=115200, tx=Pin(0), rx=Pin(1))
    rx, head = Receiver(), PanTilt(servo(15), servo(14))
    last = time.ticks_ms()
    while True:
        data = uart.read()
        if data:
            for _type, _seq, state, nx, ny, _score in rx.feed(data):
                last = time.ticks_ms()
                head.apply(state, nx, ny)
        if time.ticks_diff(time.ticks_ms(), last) > TIMEOUT_MS:
            last = time.ticks_ms()   # link silent: hold (servos keep their last angle)
        time.sleep_ms(2)


if __name__ == "__main__":  # pragma: no cover
    main()
