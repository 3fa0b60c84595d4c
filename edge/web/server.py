"""The console's HTTP server (standard library only): its socket, threads and limits. The requests it
answers are edge/web/handler.py's, what each API call does is edge/web/console.py's:

| method | path | what |
|---|---|---|
| GET | `/` | the page (no CDN: everything is served from here) |
| GET | `/stream.mjpg` | live view, MJPEG, capped rate and quality |
| GET | `/api/state` | state, box, score, fps, frame age, latency, engine, model, dry run |
| GET | `/api/config` | the active configuration (read-only) |
| GET | `/api/log?lines=N` | the last N lines of the track log |
| GET | `/api/calibration` | camera calibration and gimbal profile in use |
| GET | `/api/history?since=T` | the last minute of score, centring error, commanded rates, fps, latency (after T s) |
| POST | `/api/select` | `{"box": [x, y, w, h]}` or `{"point": [x, y], "size": s}` in frame pixels: track it |
| POST | `/api/stop` | stop tracking; outputs hold |
| POST | `/api/recenter` | stop tracking and move the head to its neutral position |
| POST | `/api/outputs` | `{"dry_run": true/false}`: compute commands without sending them |

The console moves hardware, so a request from anywhere but its own page or a script is refused:
a Host that is not a name of this machine (DNS rebinding), an Origin other than the Host, a
``Sec-Fetch-Site`` other than ``same-origin``/``none`` on the API, and a POST that is not
``application/json`` (the one body type a cross-site page cannot send without a CORS preflight,
which is never granted). Bound to localhost by default; on any other address every API call and
the stream also need the token (``Authorization: Bearer <token>`` or ``?token=``), compared in
constant time, printed at start and kept in the state directory with mode 0600.

Connections are bounded: at most ``MAX_CONNECTIONS`` handler threads (more get a 503 at once), of
which live views hold at most ``MAX_VIEWERS``; a request must arrive whole within
``REQUEST_TIMEOUT`` and an answer or a frame leave within ``WRITE_TIMEOUT``. Bodies are limited to
4 KiB and every field is checked by type and range, targets against the frame.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from edge.web import cross_site
from edge.web.addresses import console_urls
from edge.web.connections import BoundedThreadingHTTPServer
from edge.web.console import Console
from edge.web.handler import Handler
from edge.web.history import TelemetryHistory
from edge.web.token_file import default_state_dir, load_or_create_token

REQUEST_TIMEOUT = 5.0        # s from connect (or the last answer) until the whole request is in
WRITE_TIMEOUT = 10.0         # s for one answer or one live-view frame to leave
MAX_CONNECTIONS = 32         # handler threads at once
MAX_VIEWERS = 4              # of those, long-lived live views: the API always keeps the rest


class _Server(BoundedThreadingHTTPServer):
    def __init__(self, address, handler, *, max_connections: int, max_viewers: int, request_timeout: float,
                 write_timeout: float) -> None:
        self.viewer_slots = threading.BoundedSemaphore(max_viewers)
        self.max_viewers = max_viewers
        self.request_timeout, self.write_timeout = request_timeout, write_timeout
        self.stopping = threading.Event()
        self.host_names = cross_site.allowed_names(address[0])
        super().__init__(address, handler, max_connections=max_connections)

    def knows(self, name: str, connection: socket.socket) -> bool:
        if name in self.host_names:
            return True
        try:     # bound to 0.0.0.0: whichever of the machine's addresses the client connected to
            local = connection.getsockname()[0].lower()
        except OSError:
            return False
        return name in (local, local.removeprefix("::ffff:"))


def bind_console(bind: str, port: int, *, request_timeout: float = REQUEST_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                 max_viewers: int = MAX_VIEWERS) -> _Server:
    """The console's listening socket, bound now (OSError when the port is taken), served once a
    ConsoleServer is made on it: ``run`` binds it before it opens any output, so a second instance
    is refused before it sends anything to a head."""
    return _Server((bind, port), Handler, max_connections=max_connections, max_viewers=max_viewers,
                   request_timeout=request_timeout, write_timeout=write_timeout)


class ConsoleServer:
    def __init__(self, loop, publisher, device_cfg, *, bind: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, state_dir: str | None = None, request_timeout: float = REQUEST_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT, max_connections: int = MAX_CONNECTIONS,
                 max_viewers: int = MAX_VIEWERS, httpd: _Server | None = None) -> None:
        # No token on loopback, by choice. Once cross-site requests are refused (JSON only, Host,
        # Origin and Sec-Fetch-Site checked), what can still reach 127.0.0.1 is a program on the
        # device itself; demanding the token there would make every local script and ssh tunnel
        # fetch it from a 0700 state directory for little gain. Beyond loopback anyone on the
        # network can connect, so there the token is always required. A machine with untrusted
        # local users binds to 127.0.0.2 (loopback, yet not an address that skips the token).
        if token is None and bind not in cross_site.LOOPBACK_NAMES:
            token = load_or_create_token(state_dir or default_state_dir())
        self.token = token
        self.httpd = httpd or bind_console(bind, port, request_timeout=request_timeout, write_timeout=write_timeout,
                                           max_connections=max_connections, max_viewers=max_viewers)
        self.history = TelemetryHistory(loop)
        self.httpd.console = Console(loop, publisher, device_cfg, token=token,   # type: ignore[attr-defined]
                                     history=self.history)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="web-console", daemon=True)

    @property
    def urls(self) -> list[str]:
        """Where a browser can open the console (names and addresses when bound to all of them)."""
        host, port = self.httpd.server_address[:2]
        ipv4 = True
        if self.httpd.address_family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                ipv4 = not self.httpd.socket.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        return console_urls(host, port, self.token, ipv4=ipv4)

    @property
    def url(self) -> str:
        """The start-up line's text: the first address, then one more per line."""
        return "\n  or ".join(self.urls)

    def start(self) -> "ConsoleServer":
        self.history.start()
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.history.close()
