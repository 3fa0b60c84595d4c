"""A fake $NOTIFY_SOCKET: what the service would tell systemd."""

from __future__ import annotations

import socket
import time


class NotifySocket:
    def __init__(self, tmp_path, clock=time.monotonic) -> None:
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.01)
        self.clock = clock
        self.messages = []

    @property
    def env(self) -> dict:
        return {"NOTIFY_SOCKET": self.path}

    def drain(self):
        """(time on ``clock``, message) of everything received so far."""
        while True:
            try:
                self.messages.append((self.clock(), self.sock.recv(1024).decode()))
            except (socket.timeout, BlockingIOError):
                return self.messages

    def texts(self) -> list[str]:
        return [m for _, m in self.drain()]

    def close(self) -> None:
        self.sock.close()
