"""The web console: the JSON API over real HTTP on loopback, and the page in headless Chromium."""

import json
import os
import shutil
import stat
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import make_clip_frames
from edge.camera.base import Frame
from edge.config import load_config
from edge.outputs.base import LogOutput
from edge.runtime.loop import TrackingLoop
from edge.tracker import TrackResult, TrackState
from edge.web.publisher import FramePublisher
from edge.web.server import ConsoleServer


class LiveGrabber:
    """Generated frames at ~30 fps, forever: a camera stand-in."""

    def __init__(self):
        self.frames, _ = make_clip_frames(30, size=(320, 240))
        self.i = 0
        self.finished = False
        self.dropped = 0

    def get(self, timeout):
        time.sleep(1 / 30)
        self.i += 1
        return Frame(self.frames[self.i % len(self.frames)], time.monotonic_ns(), self.i)

    def stop(self):
        self.finished = True


class FollowingTracker:
    """Reports TRACKING on the box it was given (the console's job is getting that box to it)."""

    def __init__(self):
        self.search_factor = 4.0
        self.inits = []
        self.box = None

    def set_search_factor(self, f):
        self.search_factor = f

    def init(self, frame, box):
        self.inits.append(tuple(round(v, 1) for v in box))
        self.box = tuple(box)
        return TrackResult(self.box, 1.0, TrackState.TRACKING, 0)

    def update(self, frame):
        return TrackResult(self.box, 0.9, TrackState.TRACKING, 0)


class RecenterOutput(LogOutput):
    name = "recording"

    def __init__(self):
        super().__init__()
        self.recentered = 0

    def recenter(self):
        self.recentered += 1


@pytest.fixture()
def console(tmp_path, request):
    bind = getattr(request, "param", "127.0.0.1")
    log_path = tmp_path / "track.jsonl"
    cfg = load_config({"telemetry": {"track_log": str(log_path)}})
    from edge.runtime.telemetry import TrackLog

    tracker, out = FollowingTracker(), RecenterOutput()
    publisher = FramePublisher(max_fps=10)
    loop = TrackingLoop(tracker=tracker, grabber=LiveGrabber(), outputs=[out], config=cfg, publisher=publisher,
                        track_log=TrackLog(str(log_path)))
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    server = ConsoleServer(loop, publisher, cfg, bind=bind, port=0, state_dir=str(tmp_path / "state")).start()
    host, port = server.httpd.server_address[:2]
    yield {"base": f"http://{host}:{port}", "server": server, "loop": loop, "tracker": tracker, "out": out,
           "publisher": publisher, "state_dir": tmp_path / "state"}
    server.close()
    stop.set()
    thread.join(timeout=3)
    publisher.close()


def call(base, path, body=None, token=None, raw=None, headers=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_select_reinitialises_the_tracker_and_stop_holds_the_outputs(console):
    base = console["base"]
    assert wait_for(lambda: call(base, "/api/state")[1]["frame_size"] == [320, 240])
    status, state = call(base, "/api/state")
    assert status == 200 and state["state"] == "IDLE"
    status, reply = call(base, "/api/select", {"box": [40, 30, 24, 20]})
    assert status == 200 and reply["ok"]
    assert wait_for(lambda: console["tracker"].inits == [(40.0, 30.0, 24.0, 20.0)])
    assert wait_for(lambda: call(base, "/api/state")[1]["state"] == "TRACKING")
    call(base, "/api/select", {"point": [100, 80], "size": 40})
    assert wait_for(lambda: console["tracker"].inits[-1] == (80.0, 60.0, 40.0, 40.0))
    stops = console["out"].stops
    assert call(base, "/api/stop", {})[0] == 200
    assert wait_for(lambda: console["out"].stops > stops and console["loop"].state == "IDLE")
    assert call(base, "/api/recenter", {})[0] == 200
    assert wait_for(lambda: console["out"].recentered == 1)


def test_dry_run_computes_but_does_not_send(console):
    base, out = console["base"], console["out"]
    call(base, "/api/select", {"box": [40, 30, 24, 20]})
    assert wait_for(lambda: out.sent > 3)
    assert call(base, "/api/outputs", {"dry_run": True}) == (200, {"ok": True, "dry_run": True})
    time.sleep(0.2)
    sent = out.sent
    time.sleep(0.3)
    assert out.sent == sent and call(base, "/api/state")[1]["state"] == "TRACKING"
    call(base, "/api/outputs", {"dry_run": False})
    assert wait_for(lambda: out.sent > sent)


@pytest.mark.parametrize("raw, why", [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"),
                                      (json.dumps({"box": [1, 2, 3]}).encode(), "4 numbers"),
                                      (json.dumps({"box": [1, 2, -3, 4]}).encode(), "positive"),
                                      (json.dumps({"box": [1, 2, "x", 4]}).encode(), "finite numbers"),
                                      (json.dumps({"point": [1e999, 2]}).encode().replace(b"Infinity", b"1e999"), "")])
def test_malformed_bodies_are_400(console, raw, why):
    status, reply = call(console["base"], "/api/select", raw=raw)
    assert status == 400 and why in reply["error"]
    assert console["tracker"].inits == []


def test_oversized_body_is_400(console):
    status, reply = call(console["base"], "/api/select", raw=b"{" + b" " * 10000 + b"}")
    assert status == 400 and "at most 4096 bytes" in reply["error"]


def test_read_only_views(console):
    base = console["base"]
    call(base, "/api/select", {"box": [40, 30, 24, 20]})
    assert wait_for(lambda: len(call(base, "/api/log?lines=5")[1]["lines"]) == 5)
    lines = call(base, "/api/log?lines=5")[1]["lines"]
    assert json.loads(lines[-1])["state"] in ("TRACKING", "IDLE")
    status, cfg = call(base, "/api/config")
    assert status == 200 and cfg["control"]["max_rate_dps"] == 60.0
    assert call(base, "/api/calibration")[1]["camera_calibration"] is None
    assert call(base, "/api/nope")[0] == 404


def test_live_view_streams_jpeg_only_while_watched(console):
    publisher = console["publisher"]
    time.sleep(0.3)
    assert publisher.encoded == 0                      # nobody watching: nothing encoded
    with urllib.request.urlopen(console["base"] + "/stream.mjpg", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        data = b""
        while data.count(b"\xff\xd9") < 2:
            data += resp.read1(65536)
    assert b"Content-Type: image/jpeg" in data and data.count(b"\xff\xd8") >= 2
    assert wait_for(lambda: publisher.viewers == 0)


@pytest.mark.parametrize("console", ["127.0.0.2"], indirect=True)
def test_non_local_bind_requires_the_token(console):
    base, token = console["base"], console["server"].token
    assert token and len(token) >= 32
    token_file = console["state_dir"] / "web-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600 and token_file.read_text().strip() == token
    assert call(base, "/api/state")[0] == 401
    assert call(base, "/api/select", {"box": [1, 2, 3, 4]})[0] == 401
    assert call(base, "/api/select", {"box": [1, 2, 3, 4]}, token="x" * len(token))[0] == 401
    assert console["tracker"].inits == []
    assert call(base, "/api/state", token=token)[0] == 200
    assert call(base, f"/api/state?token={token}")[0] == 200
    assert call(base, "/api/select", {"box": [40, 30, 24, 20]}, token=token)[0] == 200
    assert wait_for(lambda: console["tracker"].inits == [(40.0, 30.0, 24.0, 20.0)])
    with urllib.request.urlopen(base + "/", timeout=5) as resp:   # the page itself holds no secret
        assert b"edge-track" in resp.read()


def test_page_in_headless_chromium(console):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    options = Options()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.set_page_load_timeout(20)
        browser.get(console["base"] + "/")
        # A live frame arrives (the MJPEG image has pixels).
        assert wait_for(lambda: browser.execute_script(
            "const i = document.getElementById('live'); return i.complete && i.naturalWidth > 0;"), timeout=10)
        assert wait_for(lambda: browser.find_element(By.ID, "state").text == "IDLE", timeout=5)
        overlay = browser.find_element(By.ID, "overlay")
        width = overlay.size["width"]
        # Drag from (25%, 25%) to (50%, 50%) of the view.
        ActionChains(browser).move_to_element_with_offset(overlay, -width // 4, -overlay.size["height"] // 4) \
            .click_and_hold().move_by_offset(width // 4, overlay.size["height"] // 4).release().perform()
        assert wait_for(lambda: browser.find_element(By.ID, "state").text == "TRACKING", timeout=5)
        x, y, w, h = console["tracker"].inits[-1]
        assert abs(x - 80) < 8 and abs(y - 60) < 8 and abs(w - 80) < 8 and abs(h - 60) < 8   # a quarter of 320x240
    finally:
        browser.quit()
