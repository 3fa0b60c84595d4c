"""The console's HTTP request handler: routing, the token, the cross-site refusals, static files,
request bodies and the MJPEG live view. What each API call does is edge/web/console.py."""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import io
import json
import logging
import math
import socket
import time
from http.server import BaseHTTPRequestHandler
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from edge.web import cross_site
from edge.web.connections import DeadlineReader
from edge.web.console import ACTIONS, BadRequest, Console, NotFound

log = logging.getLogger("edge.web")

MAX_BODY = 4096
STREAM_SNDBUF = 128 * 1024   # a slow viewer gets fewer, fresh frames instead of seconds of backlog
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/charts.js": ("charts.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}


class Handler(BaseHTTPRequestHandler):
    server_version = "edge-track"
    protocol_version = "HTTP/1.1"

    @property
    def console(self) -> Console:
        return self.server.console   # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # requests are not worth a journal line each
        log.debug("%s " + fmt, self.address_string(), *args)

    # -- connection ----------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.deadline = time.monotonic() + self.server.request_timeout   # type: ignore[attr-defined]
        self.rfile.close()
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, lambda: self.deadline))

    def handle_one_request(self) -> None:
        # The clock starts when the last answer has gone: idle keep-alive connections are closed too.
        self.deadline = time.monotonic() + self.server.request_timeout   # type: ignore[attr-defined]
        super().handle_one_request()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError as exc:      # the client went away or stopped reading: one debug line, no traceback
            log.debug("%s: connection dropped (%s)", self.client_address[0], exc.__class__.__name__)

    def flush_headers(self) -> None:
        self.connection.settimeout(self.server.write_timeout)   # type: ignore[attr-defined]
        super().flush_headers()

    # -- helpers -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"))

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True     # an unread body must not be taken for the next request
        self._json(status, {"error": message})

    def _run(self, action, *args) -> tuple[int, object]:
        try:
            return 200, action(*args)
        except BadRequest as exc:
            return exc.status, {"error": str(exc)}
        except Exception:               # a bug, not bad input: the journal gets the traceback
            log.exception("web console: %s %s failed", self.command, self.path[:200])
            return 500, {"error": "internal error (see the service log)"}

    def _known(self, name: str) -> bool:
        return self.server.knows(name, self.connection)   # type: ignore[attr-defined]

    def _authorized(self, query: dict) -> bool:
        token = self.console.token
        if token is None:
            return True
        given = ""
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):].strip()
        elif "token" in query:
            given = query["token"][0]
        return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))

    def _route(self):
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query)

    # -- GET -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, query = self._route()
        # The page itself holds no secret and may be linked from anywhere; the Host check still
        # applies so a rebinding name gets nothing at all.
        refusal = cross_site.refusal(self.headers, self._known, api=path not in STATIC)
        if refusal:
            self._refuse(*refusal)
        elif path in STATIC:
            name, ctype = STATIC[path]
            self._send(200, resources.files("edge.web").joinpath("static", name).read_bytes(), ctype)
        elif not self._authorized(query):
            self._refuse(401, "missing or wrong token")
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._json(*self._run(self._view, path, query))

    def _view(self, path: str, query: dict):
        console = self.console
        if path == "/api/state":
            return console.state()
        if path == "/api/config":
            return dataclasses.asdict(console.cfg)
        if path == "/api/log":
            try:
                lines = max(1, min(500, int(query.get("lines", ["50"])[0])))
            except ValueError:
                raise BadRequest("lines must be an integer") from None
            return {"lines": console.log_tail(lines)}
        if path == "/api/calibration":
            return console.calibration()
        if path == "/api/history":
            try:
                since = float(query.get("since", ["-1"])[0])
            except ValueError:
                since = math.nan
            if not math.isfinite(since):
                raise BadRequest("since must be a finite number of seconds")
            return console.history.since(since)
        raise NotFound(f"no such resource {path[:100]}")

    def _stream(self) -> None:
        publisher = self.console.publisher
        if publisher is None:
            self._refuse(404, "no live view in this configuration")
            return
        slots = self.server.viewer_slots   # type: ignore[attr-defined]
        if not slots.acquire(blocking=False):
            self._refuse(503, f"at most {self.server.max_viewers} live views at a time")   # type: ignore[attr-defined]
            return
        self.close_connection = True
        try:
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            last = publisher.add_viewer()
            try:
                while not self.server.stopping.is_set():   # type: ignore[attr-defined]
                    last, jpeg = publisher.wait_frame(last, timeout=1.0)
                    if jpeg is None:
                        continue
                    # A viewer that stops reading times out here (WRITE_TIMEOUT) and frees its slot.
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            except OSError as exc:
                log.debug("%s: live view ended (%s)", self.client_address[0], exc.__class__.__name__)
            finally:
                publisher.remove_viewer()
        finally:
            slots.release()

    # -- POST ----------------------------------------------------------------------------------
    def do_POST(self) -> None:
        path, query = self._route()
        refusal = cross_site.refusal(self.headers, self._known, api=True)
        if refusal:
            self._refuse(*refusal)
            return
        if not self._authorized(query):
            self._refuse(401, "missing or wrong token")
            return
        if path not in ACTIONS:
            self._refuse(404, f"no such action {path[:100]}")
            return
        # A cross-site page can POST text/plain, form or multipart bodies without asking; JSON needs
        # a CORS preflight, which this server never grants.
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            self._refuse(415, "a request that changes state must be sent as Content-Type: application/json")
            return
        if "Transfer-Encoding" in self.headers:
            self._refuse(411, "send the body with a Content-Length")
            return
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self._refuse(400, f"request body must be at most {MAX_BODY} bytes")
            return
        raw = self.rfile.read(size) if size else b""
        if len(raw) < size:             # the client closed mid-body
            self.close_connection = True
            return
        self._json(*self._run(self._act, ACTIONS[path], raw))

    def _act(self, action, raw: bytes):
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return action(self.console, body)
