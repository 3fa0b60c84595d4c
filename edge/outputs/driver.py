"""The gimbal behaviour every output shares, in one class (``HeadDriver``): the command a head
must have (the standing command), what a heartbeat writes (a hold, never stale motion), what a
reconnect sends again, and the last stop at exit; ``ServoHead`` adds the rate-to-angle step for
heads that take positions. The outputs say only what their protocol's frames are and which link
carries them (edge.outputs.transport, or the servos' pins and board); the loop's dry run reaches
them as heartbeats, so it sends no motion.
"""

from __future__ import annotations

from typing import Protocol

from edge.control.integrator import RateIntegrator


class Link(Protocol):
    """What the driver writes through: a serial port or a MAVLink connection
    (edge.outputs.transport), a PCA9685 board, a pair of gpiozero servos."""

    connected: bool
    connection: int      # successful opens: a new number is a fresh link, the head may have missed it all
    reconnects: int
    write_errors: int

    def write(self, frame) -> bool: ...

    def reopen_now(self) -> None: ...

    def close(self) -> None: ...


class HeadDriver:
    """What every head gets, whatever its protocol: the standing command, the hold, the last stop and
    the close; an output names its ``link`` (``connected``, ``connection``: a new number per open,
    ``write(frame) -> bool``, ``reopen_now()``, ``close()``) and says what a stop is (``stop``).

    A head acts on the last command it received until the next one: Pelco-D latches a speed, an
    angle set-point stands. ``_command`` makes a frame the standing command; it counts as delivered
    only once a write of it succeeded on the port as it is open now, and ``_refresh`` writes it again
    until then: after a failed write and after the port was reopened (the device may have been
    unplugged, or power-cycled, with its last command lost or still latched), a stop included.

    Only a frame asks for motion: a heartbeat (``_hold_still``) writes a standing stop or hold again,
    but a speed the head may lack becomes a stop instead, so a head power-cycled during a frame gap
    is never started on a stale speed.
    """

    link: Link
    _closed = False
    _standing: object = None           # a frame: bytes, a MAVLink send, a pair of angles
    _delivered_on: int | None = None   # the link.connection the standing command was written on
    _moving = False                    # the standing command is motion (a speed), not a stop/hold

    def _command(self, frame, *, always: bool = False, moving: bool = False) -> bool:
        """Make ``frame`` the standing command and write it unless the head has it already
        (``always``: write it anyway, for protocols streamed to a dead-man timeout; ``moving``: it
        is motion, which only a frame may send). True when the head has it."""
        if frame != self._standing:
            self._standing, self._delivered_on = frame, None
        self._moving = moving
        return self._refresh(always=always)

    def _has_it(self) -> bool:
        return self.link.connected and self._delivered_on == self.link.connection

    def _hold_still(self, *, again: bool = False) -> bool:
        """What a heartbeat writes: the standing command if it holds the head still, or a stop in
        place of a motion command the head may lack. ``again``: write a standing stop or hold even
        if the head has it (a link that cannot tell whether anyone got it). True when the head has it."""
        if self._moving and not self._has_it():
            self.stop()
            return self._has_it()
        return self._refresh(always=again and not self._moving)

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

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def write_errors(self) -> int:
        return self.link.write_errors

    @property
    def reconnects(self) -> int:
        return self.link.reconnects

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
        """The last stop, on a link reopened for it if it was down, then the link closed; never raises."""
        if not self._closed:
            try:
                self.link.reopen_now()
                begin_close = getattr(self.link, "begin_close", None)   # a serial port's bounded flush
                if begin_close is not None:
                    begin_close()
                self.stop()
                self._before_close()
            except Exception:
                pass
            self._closed = True
            try:
                self.link.close()
            except Exception:
                pass


class ServoHead(HeadDriver):
    """Servos take positions: rates are integrated into angles, and the standing command is the
    pair of angles (degrees) the servos last got, kept by the link's board or pins between calls. A
    hold writes nothing unless the link may have lost them; a stop is a hold."""

    angles: RateIntegrator

    @property
    def pan_deg(self) -> float:
        return self.angles.pan_deg

    @property
    def tilt_deg(self) -> float:
        return self.angles.tilt_deg

    def _set(self, pan_deg: float, tilt_deg: float) -> bool:
        return self._command((pan_deg, tilt_deg), always=True)

    def _hold(self) -> None:
        self.angles.hold()
        self._command((self.angles.pan_deg, self.angles.tilt_deg))

    def send(self, update) -> None:
        # A write that fails (or raises) leaves the angles where the servos last got them: no jump later.
        self.angles.advance(update.command, self._set)

    def heartbeat(self, now_ms: int, state: str) -> None:
        self._hold()

    def stop(self) -> None:
        try:
            self._hold()
        except Exception:
            pass

    def recenter(self) -> None:
        self.angles.pan_deg = self.angles.tilt_deg = 0.0
        self._set(0.0, 0.0)   # if it fails, the next hold writes 0/0 again
