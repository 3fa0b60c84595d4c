"""The links outputs talk over, in one place: a serial port (``SerialLink``) and pymavlink's
serial, UDP and TCP connections (``open_mavlink``, with the MAVLink port grammar it accepts).

A serial port survives being unplugged: writes never raise, the port is reopened with backoff, and
what could not be sent is counted. Writes never wait: the port is non-blocking, and a device that
stops reading (a full buffer, a stream faster than the baud rate) costs the frames it does not
take, never the loop's time. What the port did not take is not queued: the output's standing
command is written again on the next call (edge.outputs.driver), so the newest command wins. A
port that takes nothing for ``STUCK_S`` is reported (one line), its output buffer discarded, and
it is reopened.

A MAVLink link never blocks the loop either: sends are fire-and-forget datagrams (or serial
writes), and errors pymavlink would swallow reach the output, which counts them and reopens.
"""

from __future__ import annotations

import logging
import os
import select
import time
from dataclasses import dataclass

from edge.errors import ConfigError, quoted
from edge.io.backoff import Backoff
from edge.io.libraries import PYMAVLINK
from edge.outputs.base import OutputConfig, required_port
from edge.schema import num

log = logging.getLogger("edge.outputs.transport")


# -- a serial port --------------------------------------------------------------------------------

def serial_device(port: str) -> None:
    """Serial devices are not looked for at load: a USB adapter may appear after boot."""


@dataclass
class SerialPortConfig(OutputConfig):
    port: str = required_port(serial_device)   # serial device, e.g. /dev/ttyUSB0
    baud: int = num(115200, 300, 4000000)


STUCK_S = 1.0   # s without the port taking a whole write: reported, flushed and reopened
CLOSE_S = 0.3      # s the last words (a stop) may wait for room in the port at exit


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
        self._closing_by = 0.0   # monotonic deadline of the last words (begin_close); 0 while running
        self._saturated_at_close = False
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
        """Bytes of ``data`` the port took now, without waiting (0 when its buffer is full); while
        the last words go out (``begin_close``), waiting for room up to their deadline."""
        port = self._port
        fileno = getattr(port, "fileno", None)
        if fileno is None:   # a port without a descriptor (a test double, a URL handler): its own write
            taken = port.write(data)
            return len(data) if taken is None else int(taken)
        taken = 0
        while True:
            try:
                taken += os.write(fileno(), data[taken:])
            except BlockingIOError:
                pass
            left = self._closing_by - time.monotonic() if self._closing_by else 0.0
            if taken == len(data) or left <= 0:
                return taken
            select.select([], [fileno()], [], min(left, 0.05))

    def begin_close(self) -> None:
        """The last words (a stop, a release) come next and may wait up to CLOSE_S for room instead
        of being dropped by a full buffer. On a port that was not keeping up, what it still holds is
        stale (speeds the stop replaces) and is thrown away first. Exit only: never on the loop's
        frames."""
        self._closing_by = time.monotonic() + CLOSE_S
        if not (self._rest or self._stuck_since is not None):
            return   # the port keeps up: what it holds goes out in order, as it would have
        self._saturated_at_close = True
        self._rest, self._stuck_since = b"", None
        try:
            if self._port is not None:
                self._port.reset_output_buffer()
        except Exception:
            pass

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
        """Closed; after a saturated port's last words, once they have left or their deadline has
        passed (a tty's own close would wait 30 s for a device that does not read): then the rest
        is discarded."""
        waiting = False
        while self._saturated_at_close and self._port is not None:
            try:
                waiting = bool(self._port.out_waiting)
            except Exception:
                waiting = False
            if not waiting or time.monotonic() >= self._closing_by:
                break
            time.sleep(0.01)
        self._drop(discard=waiting)


# -- MAVLink: serial, UDP and TCP through pymavlink -------------------------------------------

MAVLINK_NETWORK_SCHEMES = ("udpin", "udpout", "udpbcast", "udp", "tcpin", "tcp")


def check_mavlink_port(port: str) -> None:
    """Refuse a MAVLink port that cannot be opened, without opening it: ``SCHEME:HOST:PORT`` for
    udpin/udpout/udpbcast/udp/tcpin/tcp, otherwise a serial device (``/dev/ttyACM0``, optionally
    ``,BAUD``). A serial device is not looked for: like the other serial outputs' adapters, it may
    appear after boot (the output waits for it). Raises ConfigError with one line."""
    shown = quoted(port)
    scheme, sep, rest = port.partition(":")
    if sep and scheme in MAVLINK_NETWORK_SCHEMES:
        host, sep, number = rest.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"mavlink port {shown}: expected {scheme}:HOST:PORT")
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise ConfigError(f"mavlink port {shown}: {quoted(number)} is not a port number (1-65535)")
        return
    if os.path.exists(port):
        return   # an existing path: pymavlink opens it whole, commas and all
    device, comma, baud = port.partition(",")   # pymavlink's "DEVICE,BAUD"
    if not device or (comma and not baud.isdigit()):
        raise ConfigError(f"mavlink port {shown}: expected a serial device (DEVICE or DEVICE,BAUD) "
                          "or SCHEME:HOST:PORT")


def is_serial_port(port: str) -> bool:
    """True for a port pymavlink opens as a serial device, not a network link."""
    scheme, sep, _ = port.partition(":")
    return not (sep and scheme in MAVLINK_NETWORK_SCHEMES)


class SerialDeviceDown(ConfigError):
    """A well-formed serial port whose device cannot be opened now (not plugged in yet, gone)."""


def open_mavlink(port: str, *, baud: int, system_id: int, component_id: int, dialect: str):
    """A pymavlink connection to ``port``; ConfigError (one line) when it cannot be opened."""
    try:
        from pymavlink import mavutil
    except ImportError:
        raise PYMAVLINK.missing("the mavlink output") from None
    check_mavlink_port(port)
    try:
        conn = mavutil.mavlink_connection(port, source_system=system_id, source_component=component_id, baud=baud,
                                          dialect=dialect,
                                          retries=0)   # tcp: one connect attempt, not seconds of sleeps in the loop
    except (OSError, ValueError) as exc:
        error = SerialDeviceDown if isinstance(exc, OSError) and is_serial_port(port) else ConfigError
        raise error(f"mavlink port {port!r} cannot be opened: {exc}") from None
    if isinstance(conn, mavutil.mavserial):
        _surface_serial_errors(conn)
    elif isinstance(conn, mavutil.mavtcp):
        _surface_tcp_errors(conn)
    return conn


def _surface_serial_errors(conn) -> None:
    # pymavlink's serial write swallows a failed write (printing "Device ... is dead" on stdout), so
    # an unplugged autopilot would go unnoticed: write straight to the port and let the error reach
    # the output, which counts it and reopens the link. A stalled port must not block the loop.
    conn.port.write_timeout = 0.05

    def write(buf):
        return conn.port.write(bytes(buf))

    conn.write = write


def _surface_tcp_errors(conn) -> None:
    # pymavlink's TCP write swallows EPIPE/ECONNRESET too (and, without autoreconnect, keeps the dead
    # socket): let the error reach the output, which counts it and reconnects with backoff. A full
    # send buffer (EAGAIN) only drops this message, as pymavlink does: the socket is not blocked on.
    def write(buf):
        try:
            conn.port.send(bytes(buf))
        except BlockingIOError:
            pass

    conn.write = write


class MavlinkLink:
    """A pymavlink connection that survives being lost: ``send(fn)`` runs ``fn()`` (a message handed
    to the connection) and never raises for a link that failed: it is counted, the connection is
    closed and reopened with backoff on a later send. ``connection`` numbers the successful opens, so
    the driver knows when whatever is at the other end may have missed everything
    (edge.outputs.driver). ``log`` is the output's, so its lines say which output lost its link."""

    def __init__(self, connect, *, port: str, log: logging.Logger, clock=time.monotonic,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 5.0) -> None:
        self.port, self._connect, self._log = port, connect, log
        self._backoff = Backoff(backoff_initial_s, backoff_max_s, clock=clock)
        self.conn = None
        self.connection = 0
        self.reconnects = 0
        self.write_errors = 0
        self._closed = False
        try:
            self.conn = connect()
            self.connection = 1
        except SerialDeviceDown as exc:
            # A USB autopilot may appear after boot: start with the link down and reopen it with
            # backoff, as after a loss. A malformed port still fails here (plain ConfigError).
            log.warning("mavlink link %s is down (%s); retrying with backoff", port, exc)
            self._backoff.failed()

    @property
    def connected(self) -> bool:
        return self.conn is not None

    def up(self):
        """The connection, reopened first if it was lost and the backoff allows; None if down."""
        if self.conn is None and not self._closed and self._backoff.due():
            self.reopen()
        return self.conn

    def reopen(self) -> bool:
        try:
            self.conn = self._connect()
        except ConfigError:
            self._backoff.failed()
            return False
        self._backoff.succeeded()
        self.reconnects += 1
        self.connection += 1
        self._log.info("mavlink link %s reconnected", self.port)
        return True

    def reopen_now(self) -> None:
        """Reopen a lost link at once, backoff or not: the last stop goes out on a link that is back,
        however long its backoff had to run."""
        if self.conn is None:
            self.reopen()

    def lost(self, exc) -> None:
        self._log.warning("mavlink link %s lost (%s); reopening with backoff", self.port, exc)
        conn, self.conn = self.conn, None
        try:
            conn.close()
        except Exception:
            pass
        self._backoff.failed()

    def send(self, fn) -> bool:
        """Hand a message to the link (``fn()``); a link that is down must not stop tracking: count
        and reopen. True when the message was handed to the link."""
        if self.up() is None:
            self.write_errors += 1
            return False
        try:
            fn()
        except OSError as exc:
            self.write_errors += 1
            self.lost(exc)
            return False
        return True

    write = send   # the driver's name for it: a MAVLink "frame" is the message's send

    def close(self) -> None:
        self._closed = True
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None
