"""The console's JSON API: what each call reads or does, and the checks on every request body.

The HTTP side (routing, token, cross-site checks, the live view) is edge/web/handler.py; a
BadRequest raised here becomes the answer's status and its one-line ``error``.
"""

from __future__ import annotations

import math
import os
import stat

from edge.errors import ConfigError
from edge.target import TargetRequest, fit_target
from edge.web.history import TelemetryHistory


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
