"""systemd's notify protocol (sd_notify(3)) in a few lines: one datagram to $NOTIFY_SOCKET.

READY=1 once camera and model are up, WATCHDOG=1 only while frames are being processed (so a hung
camera or engine gets the service restarted), STATUS=... for `systemctl status`, STOPPING=1 when
the loop stops (a stop signal, the source ended). Without $NOTIFY_SOCKET every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


class SystemdNotifier:
    def __init__(self, environ=None, clock=time.monotonic) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        enabled = usec.isdigit() and (not pid or pid == str(os.getpid()))
        # sd_watchdog_enabled(3): ping at half the interval.
        self.watchdog_interval_s = int(usec) / 2e6 if enabled else None
        self._clock = clock
        self._last_ping = -1e18

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, text: str) -> None:
        if self._sock is None:
            return
        try:
            # Never block the loop: a receiver that does not read (queue full) loses a status.
            self._sock.sendto(text.encode("utf-8"), socket.MSG_DONTWAIT, self._address)
        except OSError:
            pass  # systemd gone, not listening or not reading: nothing to tell

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        """Ping if due (call on every processed frame; it rate-limits itself)."""
        if self.watchdog_interval_s is None:
            return
        now = self._clock()
        if now - self._last_ping >= self.watchdog_interval_s:
            self.notify("WATCHDOG=1")
            self._last_ping = now

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
