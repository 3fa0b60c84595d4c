"""A serial port that survives being unplugged: writes never raise, the port is reopened with
backoff, and what could not be sent is counted. ``SerialOutputBase`` keeps the command a head must
have, and writes it again until it is delivered on the port as it is open now.

Writes never wait: the port is non-blocking, and a device that stops reading (a full buffer, a
stream faster than the baud rate) costs the frames it does not take, never the loop's time. What
the port did not take is not queued: the output's standing command is written again on the next
call, so the newest command wins. A port that takes nothing for ``STUCK_S`` is reported (one
line), its output buffer discarded, and it is reopened."""

from __future__ import annotations

import logging
import os
import time

from edge.io.backoff import Backoff

log = logging.getLogger("edge.io.serial")

STUCK_S = 1.0   # s without the port taking a whole write: reported, flushed and reopened


class SerialLink:
    def __init__(self, port: str, baud: int, *, backoff_initial_s: float = 0.2, backoff_max_s: float = 5.0,
                 serial_module=None, clock=time.monotonic) -> None:
        self.port, self.baud = port, baud
        self._serial_module = serial_module
        self._backoff = Backoff(backoff_initial_s, backoff_max_s, clock=clock)
        self._clock = clock
        self._port = None
        self._reported = ""   # the open error already logged: an adapter that stays away is one line
        self._rest = b""      # the part of a write the port did not take: finished before anything else
        self._stuck_since: float | None = None   # when the port last failed to take a whole write
        self.write_errors = 0
        self.reconnects = 0
        self.unsent = 0       # writes the port did not take whole (it is not reading, or not fast enough)
        self.stalls = 0       # times it took nothing for STUCK_S and was reopened
        self.connection = 0   # successful opens: a new number is a fresh port, the device may have missed it all
        self._open()

    def _module(self):
        if self._serial_module is None:
            try:
                import serial
            except ImportError:
                from edge.io.libraries import PYSERIAL

                raise PYSERIAL.missing("the serial outputs") from None
            self._serial_module = serial
        return self._serial_module

    def _open(self) -> bool:
        serial = self._module()
        try:
            # write_timeout 0: non-blocking; _write_some() never lets pyserial loop on EAGAIN.
            self._port = serial.Serial(self.port, self.baud, timeout=0, write_timeout=0)
        except (OSError, serial.SerialException) as exc:
            self._port = None
            wait = self._backoff.failed()   # one failure per attempt
            if str(exc) != self._reported:   # as the frame grabber: once per distinct reason, not per retry
                log.warning("serial port %s unavailable (%s); retrying in %.1f s", self.port, exc, wait)
                self._reported = str(exc)
            else:
                log.debug("serial port %s still unavailable; retrying in %.1f s", self.port, wait)
            return False
        self._reported = ""
        self._backoff.succeeded()
        self.connection += 1
        return True

    @property
    def connected(self) -> bool:
        return self._port is not None

    def write(self, data: bytes) -> bool:
        """True once the whole of ``data`` was handed to the port; False (counted) when it was not.
        Never waits: see the module's docstring."""
        if self._port is None and not (self._backoff.due() and self._reopen()):
            self.write_errors += 1
            return False
        try:
            if self._rest:   # a frame cut in two would be garbage to the device: its end goes first
                self._rest = self._rest[self._write_some(self._rest):]
            if not self._rest:
                taken = self._write_some(data)
                if taken == len(data):
                    self._stuck_since = None
                    return True
                if taken:
                    self._rest = bytes(data[taken:])
        except Exception as exc:  # SerialException, OSError (EIO when unplugged)
            self.write_errors += 1
            log.warning("serial port %s lost (%s)", self.port, exc)
            self._drop()
            return False
        self.unsent += 1
        now = self._clock()
        if self._stuck_since is None:
            self._stuck_since = now
        elif now - self._stuck_since >= STUCK_S:
            self.stalls += 1
            log.warning("serial port %s took no data for %.1f s (the device stopped reading, or the baud rate "
                        "is too low for what is sent): discarding its output buffer and reopening it",
                        self.port, now - self._stuck_since)
            self._drop(discard=True)
        return False

    def _write_some(self, data: bytes) -> int:
        """Bytes of ``data`` the port took now, without waiting (0 when its buffer is full)."""
        port = self._port
        fileno = getattr(port, "fileno", None)
        if fileno is None:   # a port without a descriptor (a test double, a URL handler): its own write
            taken = port.write(data)
            return len(data) if taken is None else int(taken)
        try:
            return os.write(fileno(), data)
        except BlockingIOError:
            return 0

    def _reopen(self) -> bool:
        if not self._open():
            return False
        self.reconnects += 1
        log.info("serial port %s reconnected", self.port)
        return True

    def reopen_now(self) -> None:
        """Reopen a dropped port at once, backoff or not (never raises): the last stop must reach an
        adapter that came back before the backoff was due."""
        if self._port is None:
            try:
                self._reopen()
            except Exception:
                pass

    def read(self, size: int = 256) -> bytes:
        if self._port is None:
            return b""
        try:
            return self._port.read(size) or b""
        except Exception:
            self._drop()
            return b""

    def _drop(self, *, discard: bool = False) -> None:
        """Close the port; ``discard``: throw away what it holds first, so the close does not wait
        for a device that is not reading (a tty's close waits for its output to drain)."""
        self._rest, self._stuck_since = b"", None
        try:
            if self._port is not None:
                if discard:
                    self._port.reset_output_buffer()
                self._port.close()
        except Exception:
            pass
        # No backoff step here: losing the port is not an attempt. The next write tries to reopen
        # at once (a glitch recovers in a frame) and each failed attempt then doubles the wait.
        self._port = None

    def close(self) -> None:
        self._drop()


class SerialOutputBase:
    """Shared part of the serial outputs: the head's standing command, and close().

    A head acts on the last command it received until the next one: Pelco-D latches a speed, an
    angle set-point stands. ``_command`` makes a frame the standing command; it counts as delivered
    only once a write of it succeeded on the port as it is open now, and ``_refresh`` writes it again
    until then: after a failed write and after the port was reopened (the device may have been
    unplugged, or power-cycled, with its last command lost or still latched), a stop included.

    Only a frame asks for motion: a heartbeat (``_hold_still``) writes a standing stop or hold again,
    but a speed the head may lack becomes a stop instead, so a head power-cycled during a frame gap
    is never started on a stale speed.
    """

    link: SerialLink
    _closed = False
    _standing: bytes | None = None
    _delivered_on: int | None = None   # the link.connection the standing command was written on
    _moving = False                    # the standing command is motion (a speed), not a stop/hold

    def _command(self, frame: bytes, *, always: bool = False, moving: bool = False) -> bool:
        """Make ``frame`` the standing command and write it unless the head has it already
        (``always``: write it anyway, for protocols streamed to a dead-man timeout; ``moving``: it
        is motion, which only a frame may send). True when the head has it."""
        if frame != self._standing:
            self._standing, self._delivered_on = frame, None
        self._moving = moving
        return self._refresh(always=always)

    def _has_it(self) -> bool:
        return self.link.connected and self._delivered_on == self.link.connection

    def _hold_still(self) -> bool:
        """What a heartbeat writes: the standing command if it holds the head still, or a stop in
        place of a motion command the head may lack. True when the head has it."""
        if self._moving and not self._has_it():
            self.stop()
            return self._has_it()
        return self._refresh()

    def _refresh(self, *, always: bool = False) -> bool:
        """Write the standing command if the head may lack it (or ``always``); True when it has it."""
        if self._standing is None:
            return True
        if not always and self._has_it():
            return True
        if self.link.write(self._standing):
            self._delivered_on = self.link.connection
            return True
        self._delivered_on = None
        return False

    def stop(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def counters(self) -> dict:
        """Link health for the status line and /api/state."""
        counts = {"reconnects": self.link.reconnects, "write_errors": self.link.write_errors}
        for name in ("unsent", "stalls"):   # shown once it happened: a device that stopped reading
            if getattr(self.link, name, 0):
                counts[name] = getattr(self.link, name)
        return counts

    def _before_close(self) -> None:
        """Last words to the device after the stop (e.g. hand control back)."""

    def close(self) -> None:
        if not self._closed:
            self.link.reopen_now()
            self.stop()
            self._before_close()
            self._closed = True
            self.link.close()
