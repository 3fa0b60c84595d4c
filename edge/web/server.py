"""The console's HTTP server (standard library only) and its JSON API.

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
import dataclasses
import hmac
import io
import json
import logging
import math
import os
import socket
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from edge.errors import ConfigError
from edge.target import TargetRequest, fit_target
from edge.web import cross_site
from edge.web.addresses import console_urls
from edge.web.connections import BoundedThreadingHTTPServer, DeadlineReader
from edge.web.history import TelemetryHistory
from edge.web.token_file import default_state_dir, load_or_create_token

log = logging.getLogger("edge.web")

MAX_BODY = 4096
REQUEST_TIMEOUT = 5.0        # s from connect (or the last answer) until the whole request is in
WRITE_TIMEOUT = 10.0         # s for one answer or one live-view frame to leave
MAX_CONNECTIONS = 32         # handler threads at once
MAX_VIEWERS = 4              # of those, long-lived live views: the API always keeps the rest
STREAM_SNDBUF = 128 * 1024   # a slow viewer gets fewer, fresh frames instead of seconds of backlog
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/charts.js": ("charts.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}


class BadRequest(Exception):
    status = 400


class NotFound(BadRequest):
    status = 404


class NoFrameYet(BadRequest):
    status = 409


# -- body checks -------------------------------------------------------------------------------------

def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{what} must be a finite number")
    try:
        out = float(value)
    except OverflowError:      # an integer with hundreds of digits
        out = math.inf
    if not math.isfinite(out):
        raise BadRequest(f"{what} must be a finite number")
    return out


def _finite_numbers(values, count: int, what: str) -> list[float]:
    if not isinstance(values, list) or len(values) != count:
        raise BadRequest(f"{what} must be a list of {count} numbers")
    try:
        return [_number(v, what) for v in values]
    except BadRequest:
        raise BadRequest(f"{what} must be a list of {count} finite numbers") from None


def _only(body: dict, allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            expected = f"expected {', '.join(allowed)}" if allowed else "this call takes {}"
            raise BadRequest(f"unknown field {key[:40]!r} ({expected})")


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


class Console:
    """What the handler needs: the loop, the publisher, the config, the token, the charts' history."""

    def __init__(self, loop, publisher, device_cfg, *, token: str | None,
                 history: TelemetryHistory | None = None) -> None:
        self.loop, self.publisher, self.cfg, self.token = loop, publisher, device_cfg, token
        self.history = history if history is not None else TelemetryHistory(loop)   # not sampling: empty

    # -- reads ---------------------------------------------------------------------------------
    def state(self) -> dict:
        loop = self.loop
        st = loop.stats
        info = loop.tracker.info
        cam = loop.camera_model
        return {"state": loop.state, "box": list(st.box) if st.box else None, "score": round(st.score, 4),
                "fps": round(st.fps, 2), "frame_age_ms": round(st.frame_age_ms, 1),
                "latency_ms": round(st.latency_ms, 1), "frames": st.frames, "counters": st.counters,
                "frame_size": [cam.width, cam.height] if cam else None,
                "engine": info.engine, "model": info.model,
                "dry_run": loop.dry_run, "viewers": self.publisher.viewers if self.publisher else 0,
                "command": {"yaw_dps": round(st.command.yaw_rate_dps, 3),
                            "pitch_dps": round(st.command.pitch_rate_dps, 3), "active": st.command.active}}

    def log_tail(self, lines: int) -> list[str]:
        path = self.cfg.telemetry.track_log
        if not path or not os.path.isfile(path):
            return []
        try:   # non-blocking: a FIFO put there since the check must not hold this thread
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return []
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 512 * lines))
            data = f.read().decode("utf-8", errors="replace").splitlines()
        return data[-lines:]

    def calibration(self) -> dict:
        from edge.io.safe_yaml import read_yaml

        out = {"camera_calibration": self.cfg.camera.calibration or None,
               "gimbal_profile": self.cfg.control.profile or None}
        errors = {}
        for key, path in (("intrinsics", self.cfg.camera.calibration), ("profile", self.cfg.control.profile)):
            if not (path and os.path.isfile(path)):
                continue
            # Read now, not at the start: the file may have been edited (or broken) since. What is
            # wrong with it is the page's to show, not a 500 with a traceback in the journal.
            out[key] = None
            try:
                data = read_yaml(path, key) or {}
            except ConfigError as exc:
                errors[key] = str(exc)
                continue
            part = data.get("control", {}) if key == "profile" and isinstance(data, dict) else data
            if not isinstance(part, dict):
                errors[key] = (f"{path}: not a gimbal profile (no 'control' mapping)" if key == "profile"
                               else f"{path}: not a camera calibration (not a mapping)")
                continue
            out[key] = {k: part.get(k) for k in ("image_size", "model", "rms_px", "K")} if key == "intrinsics" else part
        if errors:
            out["errors"] = errors
        return out

    def frame_size(self) -> tuple[int, int]:
        cam = getattr(self.loop, "camera_model", None)
        if cam is None:
            raise NoFrameYet("no frame yet, so no frame size to check the target against: retry in a moment")
        return cam.width, cam.height

    # -- commands ------------------------------------------------------------------------------
    def select(self, body: dict) -> dict:
        _only(body, ("box", "point", "size"))
        if ("box" in body) == ("point" in body) or ("size" in body and "point" not in body):
            raise BadRequest('expected either {"box": [x, y, w, h]} or {"point": [x, y], "size": s}')
        width, height = self.frame_size()
        if getattr(getattr(self.loop, "stats", None), "outage", False):
            # The box was picked on a frame from before the outage: nothing to track it on now.
            raise NoFrameYet("no signal from the camera: pick the target again when frames are back")
        if "box" in body:
            x, y, w, h = _finite_numbers(body["box"], 4, "box")
            if w <= 0 or h <= 0:
                raise BadRequest("box width and height must be positive")
            # Strict, not clipped: a box reaching outside the frame is a caller's mistake worth hearing about.
            if x < 0 or y < 0 or x + w > width or y + h > height:
                raise BadRequest(f"box {_fmt((x, y, w, h))} is not within the {width}x{height} frame")
            box = (x, y, w, h)
        else:
            px, py = _finite_numbers(body["point"], 2, "point")
            if not (0 <= px <= width and 0 <= py <= height):
                raise BadRequest(f"point {_fmt((px, py))} is not within the {width}x{height} frame")
            side = _number(body.get("size", 80), "size")
            if not 0 < side <= max(width, height):
                raise BadRequest(f"size must be above 0 and at most {max(width, height)} pixels")
            # A tap near the edge means the part of the square that is in view.
            x0, y0 = max(0.0, px - side / 2), max(0.0, py - side / 2)
            box = (x0, y0, min(float(width), px + side / 2) - x0, min(float(height), py + side / 2) - y0)
        try:   # the loop's own rule: no 200 for a box the loop would then refuse
            box = fit_target(box, width, height)
        except ConfigError as exc:
            raise BadRequest(str(exc)) from None
        self.loop.request(TargetRequest(box=box, source="web"))
        return {"ok": True, "box": list(box)}

    def stop(self, body: dict) -> dict:
        _only(body, ())
        self.loop.request(TargetRequest(source="web"))
        return {"ok": True}

    def recenter(self, body: dict) -> dict:
        _only(body, ())
        self.loop.request(TargetRequest(recenter=True, source="web"))
        return {"ok": True}

    def outputs(self, body: dict) -> dict:
        _only(body, ("dry_run",))
        if not isinstance(body.get("dry_run"), bool):
            raise BadRequest('expected {"dry_run": true|false}')
        self.loop.set_dry_run(body["dry_run"])
        return {"ok": True, "dry_run": self.loop.dry_run}


ACTIONS = {"/api/select": Console.select, "/api/stop": Console.stop, "/api/recenter": Console.recenter,
           "/api/outputs": Console.outputs}


# -- HTTP ------------------------------------------------------------------------------------------

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
