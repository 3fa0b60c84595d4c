"""The console's HTTP server (standard library only) and its JSON API.

| method | path | what |
|---|---|---|
| GET | `/` | the page (no CDN: everything is served from here) |
| GET | `/stream.mjpg` | live view, MJPEG, capped rate and quality |
| GET | `/api/state` | state, box, score, fps, frame age, latency, engine, model, dry run |
| GET | `/api/config` | the active configuration (read-only) |
| GET | `/api/log?lines=N` | the last N lines of the track log |
| GET | `/api/calibration` | camera calibration and gimbal profile in use |
| POST | `/api/select` | `{"box": [x, y, w, h]}` or `{"point": [x, y]}` in frame pixels: track it |
| POST | `/api/stop` | stop tracking; outputs hold |
| POST | `/api/recenter` | stop tracking and move the head to its neutral position |
| POST | `/api/outputs` | `{"dry_run": true/false}`: compute commands without sending them |

Bound to localhost by default. On any other address every API call and the stream need the token
(``Authorization: Bearer <token>`` or ``?token=``), compared in constant time; it is printed at start
and kept in the state directory with mode 0600. Request bodies are limited to 4 KiB and validated.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import math
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from edge.target import TargetRequest

log = logging.getLogger("edge.web")

MAX_BODY = 4096
LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}


class BadRequest(Exception):
    pass


def load_or_create_token(state_dir: str) -> str:
    """A token kept across restarts in ``state_dir/web-token`` (0600)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, "web-token")
    if os.path.isfile(path):
        with open(path, encoding="ascii") as f:
            token = f.read().strip()
        if len(token) >= 32:
            os.chmod(path, 0o600)
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token


def default_state_dir() -> str:
    return os.environ.get("STATE_DIRECTORY") or os.path.join(os.path.expanduser("~"), ".local", "state", "edge-track")


def _finite_numbers(values, count: int, what: str) -> list[float]:
    if not isinstance(values, list) or len(values) != count:
        raise BadRequest(f"{what} must be a list of {count} numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise BadRequest(f"{what} must be a list of {count} finite numbers")
        out.append(float(v))
    return out


class Console:
    """What the handler needs: the loop, the publisher, the config, the token."""

    def __init__(self, loop, publisher, device_cfg, *, token: str | None) -> None:
        self.loop, self.publisher, self.cfg, self.token = loop, publisher, device_cfg, token

    # -- reads ---------------------------------------------------------------------------------
    def state(self) -> dict:
        loop = self.loop
        st = loop.stats
        engine = getattr(loop.tracker, "engine", None)
        meta = getattr(loop.tracker, "meta", None)
        cam = loop.camera_model
        return {"state": loop.state, "box": list(st.box) if st.box else None, "score": round(st.score, 4),
                "fps": round(st.fps, 2), "frame_age_ms": round(st.frame_age_ms, 1), "latency_ms": round(st.latency_ms, 1),
                "frames": st.frames, "frame_size": [cam.width, cam.height] if cam else None,
                "engine": getattr(engine, "name", None), "model": getattr(meta, "preset", None),
                "dry_run": loop.dry_run, "viewers": self.publisher.viewers if self.publisher else 0,
                "command": {"yaw_dps": round(st.command.yaw_rate_dps, 3), "pitch_dps": round(st.command.pitch_rate_dps, 3),
                            "active": st.command.active}}

    def log_tail(self, lines: int) -> list[str]:
        path = self.cfg.telemetry.track_log
        if not path or not os.path.isfile(path):
            return []
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 512 * lines))
            data = f.read().decode("utf-8", errors="replace").splitlines()
        return data[-lines:]

    def calibration(self) -> dict:
        import yaml

        out = {"camera_calibration": self.cfg.camera.calibration or None, "gimbal_profile": self.cfg.control.profile or None}
        for key, path in (("intrinsics", self.cfg.camera.calibration), ("profile", self.cfg.control.profile)):
            if path and os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    data = yaml.safe_load(f) or {}
                out[key] = ({k: data.get(k) for k in ("image_size", "model", "rms_px", "K")} if key == "intrinsics"
                            else data.get("control", {}))
        return out

    # -- commands ------------------------------------------------------------------------------
    def select(self, body: dict) -> dict:
        if "box" in body:
            x, y, w, h = _finite_numbers(body["box"], 4, "box")
            if w <= 0 or h <= 0:
                raise BadRequest("box width and height must be positive")
            box = (x, y, w, h)
        elif "point" in body:
            x, y = _finite_numbers(body["point"], 2, "point")
            side = float(body.get("size", 80))
            if not math.isfinite(side) or side <= 0:
                raise BadRequest("size must be a positive number")
            box = (x - side / 2, y - side / 2, side, side)
        else:
            raise BadRequest('expected {"box": [x, y, w, h]} or {"point": [x, y]}')
        self.loop.request(TargetRequest(box=box, source="web"))
        return {"ok": True, "box": list(box)}

    def stop(self, body: dict) -> dict:
        self.loop.request(TargetRequest(source="web"))
        return {"ok": True}

    def recenter(self, body: dict) -> dict:
        self.loop.request(TargetRequest(recenter=True, source="web"))
        return {"ok": True}

    def outputs(self, body: dict) -> dict:
        if not isinstance(body.get("dry_run"), bool):
            raise BadRequest('expected {"dry_run": true|false}')
        self.loop.set_dry_run(body["dry_run"])
        return {"ok": True, "dry_run": self.loop.dry_run}


class Handler(BaseHTTPRequestHandler):
    server_version = "edge-track"
    protocol_version = "HTTP/1.1"

    @property
    def console(self) -> Console:
        return self.server.console   # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # requests are not worth a journal line each
        log.debug("%s " + fmt, self.address_string(), *args)

    # -- helpers -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"))

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
        if path in STATIC:
            name, ctype = STATIC[path]
            self._send(200, resources.files("edge.web").joinpath("static", name).read_bytes(), ctype)
            return
        if not self._authorized(query):
            self._json(401, {"error": "missing or wrong token"})
            return
        console = self.console
        if path == "/api/state":
            self._json(200, console.state())
        elif path == "/api/config":
            self._json(200, dataclasses.asdict(console.cfg))
        elif path == "/api/log":
            try:
                lines = max(1, min(500, int(query.get("lines", ["50"])[0])))
            except ValueError:
                self._json(400, {"error": "lines must be an integer"})
                return
            self._json(200, {"lines": console.log_tail(lines)})
        elif path == "/api/calibration":
            self._json(200, console.calibration())
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._json(404, {"error": f"no such resource {path}"})

    def _stream(self) -> None:
        publisher = self.console.publisher
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        publisher.add_viewer()
        last = 0
        try:
            while not self.server.stopping.is_set():   # type: ignore[attr-defined]
                last, jpeg = publisher.wait_frame(last, timeout=1.0)
                if jpeg is None:
                    continue
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            publisher.remove_viewer()
            self.close_connection = True

    # -- POST ----------------------------------------------------------------------------------
    def do_POST(self) -> None:
        path, query = self._route()
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length is not None else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self.close_connection = True
            self._json(400, {"error": f"request body must be at most {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(size) if size else b""
        if not self._authorized(query):
            self._json(401, {"error": "missing or wrong token"})
            return
        actions = {"/api/select": Console.select, "/api/stop": Console.stop, "/api/recenter": Console.recenter,
                   "/api/outputs": Console.outputs}
        if path not in actions:
            self._json(404, {"error": f"no such action {path}"})
            return
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            self._json(200, actions[path](self.console, body))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._json(400, {"error": "the body is not valid JSON"})
        except BadRequest as exc:
            self._json(400, {"error": str(exc)})


class ConsoleServer:
    def __init__(self, loop, publisher, device_cfg, *, bind: str = "127.0.0.1", port: int = 8080,
                 token: str | None = None, state_dir: str | None = None) -> None:
        if token is None and bind not in LOCAL_ADDRESSES:
            token = load_or_create_token(state_dir or default_state_dir())
        self.token = token
        self.httpd = ThreadingHTTPServer((bind, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.console = Console(loop, publisher, device_cfg, token=token)   # type: ignore[attr-defined]
        self.httpd.stopping = threading.Event()                                  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="web-console", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/" + (f"?token={self.token}" if self.token else "")

    def start(self) -> "ConsoleServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.stopping.set()           # type: ignore[attr-defined]
        self.httpd.shutdown()
        self.httpd.server_close()
