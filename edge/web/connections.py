"""Connection limits for a threading HTTP server: a bounded number of handler threads, one deadline
for a whole request, and one debug line (no traceback) for a client that goes away."""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

log = logging.getLogger("edge.web")

_BUSY_BODY = b'{"error": "too many connections, retry in a moment"}'
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(_BUSY_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + _BUSY_BODY)


class DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline: a per-read timeout alone lets a client that trickles a
    byte a second hold its thread for as long as it likes."""

    def __init__(self, sock: socket.socket, deadline, clock=time.monotonic) -> None:
        """deadline() is a time on ``clock``."""
        super().__init__()
        self._sock, self._deadline, self._clock = sock, deadline, clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self._deadline() - self._clock()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """At most ``max_connections`` handler threads; a connection beyond them gets a 503 at once
    rather than a thread (400 half-sent requests used to hold 400 threads)."""

    daemon_threads = True

    def __init__(self, address, handler, *, max_connections: int) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(0)          # the accept loop never waits on a client
                request.send(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("%s: connection dropped (%s)", client_address[0], exc.__class__.__name__)
        else:                              # a bug, not a client: the journal gets the traceback
            log.exception("web console: request from %s failed", client_address[0])
