"""The web console: the JSON API over real HTTP on loopback, and the page in headless Chromium."""

import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import stat
import struct
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from conftest import make_clip_frames
from edge.config import load_config
from edge.errors import ConfigError
from edge.outputs.base import LogOutput
from edge.runtime.loop import TrackingLoop
from edge.trackers.state import TrackResult, TrackState
from edge.web.publisher import FramePublisher
from edge.web.server import ConsoleServer
from edge.web.token_file import load_or_create_token
from support.clock import FakeClock
from support.loop_fakes import FollowingTracker, LiveGrabber
from support.waiting import wait_for


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
    assert wait_for(lambda: loop.camera_model is not None)   # targets are checked against the frame size
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


def read_part(resp) -> bytes:
    """The next JPEG of a multipart live view, by its Content-Length."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += resp.read(1)
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return resp.read(length)


def first_jpeg(base) -> bytes:
    with urllib.request.urlopen(base + "/stream.mjpg", timeout=5) as resp:
        return read_part(resp)


def box_drawn(jpeg: bytes, box) -> bool:
    """Whether the overlay's green TRACKING rectangle is on the box's top edge."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    x, y, w, _ = box
    edge = image[y:y + 2, x + 4:x + w - 4]
    return float((edge[..., 1] - np.maximum(edge[..., 0], edge[..., 2])).mean()) > 80   # noise: about 0


def test_a_new_viewer_first_gets_a_frame_of_now_not_the_last_one_made_for_an_earlier_viewer(console):
    base, loop, publisher = console["base"], console["loop"], console["publisher"]
    box = (200, 150, 60, 50)
    assert not box_drawn(first_jpeg(base), box)                 # IDLE: nothing drawn
    assert wait_for(lambda: publisher.viewers == 0)
    call(base, "/api/select", {"box": list(box)})
    assert wait_for(lambda: loop.state == "TRACKING")
    frames = loop.stats.frames
    assert wait_for(lambda: loop.stats.frames > frames + 3)
    assert box_drawn(first_jpeg(base), box)                     # not the IDLE frame made for the first viewer


def test_a_frame_offered_before_the_last_viewer_left_is_not_a_new_viewers_first():
    # The encoder sleeps between frames (its rate cap); a frame offered in that sleep while the
    # last viewer leaves must not be what the next viewer, minutes later, is shown first (with no
    # new frame, as in a camera outage, it would be shown as live).
    frames, _ = make_clip_frames(2, size=(320, 240))
    box = (200, 150, 60, 50)
    tracking = TrackResult(box, 0.9, TrackState.TRACKING, 0)
    publisher = FramePublisher(max_fps=1 / 1.5)
    try:
        start = publisher.add_viewer()
        publisher.offer(frames[0], None)
        start, jpeg = publisher.wait_frame(start, timeout=5)
        assert jpeg is not None and not box_drawn(jpeg, box)
        publisher.offer(frames[1], None)                          # during the encoder's 1.5 s pause
        publisher.remove_viewer()
        publisher.offer(frames[1], tracking)                      # nobody watching: not kept
        start = publisher.add_viewer()                            # e.g. while the camera is gone
        assert publisher.wait_frame(start, timeout=3.0) == (start, None)   # the encoder woke at 1.5 s
        publisher.offer(frames[1], tracking)                      # the first frame after the viewer came
        _, jpeg = publisher.wait_frame(start, timeout=5)
        assert jpeg is not None and box_drawn(jpeg, box)
    finally:
        publisher.close()


def samples_of(history):
    columns = [k for k, v in history.items() if isinstance(v, list)]
    return [dict(zip(columns, row)) for row in zip(*(history[k] for k in columns))]


def test_history_holds_what_the_charts_draw(console):
    base, loop = console["base"], console["loop"]
    box = (200, 150, 60, 50)
    assert wait_for(lambda: call(base, "/api/history")[1]["t"])
    call(base, "/api/select", {"box": list(box)})
    assert wait_for(lambda: sum(s == "TRACKING" for s in call(base, "/api/history")[1]["state"]) >= 10)
    history = call(base, "/api/history")[1]
    assert history["window_s"] == 60 and history["t"] == sorted(history["t"]) and history["now"] >= history["t"][-1]
    rows = samples_of(history)
    yaw, pitch = loop.camera_model.angles_deg(box[0] + box[2] / 2, box[1] + box[3] / 2)   # the target's angle
    logged = [json.loads(line)["command"] for line in (console["state_dir"].parent / "track.jsonl").read_text()
              .splitlines()]
    for row in rows:
        assert row["fps"] > 0 and row["latency_ms"] >= 0
        if row["state"] == "IDLE":
            assert row["score"] is None and row["error_yaw_deg"] is None and row["error_pitch_deg"] is None
            assert row["yaw_dps"] == row["pitch_dps"] == 0
        elif row["state"] == "TRACKING":
            assert row["score"] == 0.9
            assert (row["error_yaw_deg"], row["error_pitch_deg"]) == (round(yaw, 2), round(pitch, 2))
            # The commanded rates are the loop's own, as its track log has them.
            assert any(abs(row["yaw_dps"] - c["yaw_dps"]) < 0.011 and abs(row["pitch_dps"] - c["pitch_dps"]) < 0.011
                       for c in logged)
    assert yaw > 0 > pitch and any(r["yaw_dps"] > 0 for r in rows)   # right of and below the centre
    newer = call(base, f"/api/history?since={history['t'][-1]}")[1]
    assert all(t > history["t"][-1] for t in newer["t"])
    for bad in ("x", "nan", "inf", "1e999"):
        status, reply = call(base, f"/api/history?since={bad}")
        assert status == 400 and "since" in reply["error"]


def test_history_keeps_one_minute():
    from edge.runtime.loop import LoopStats
    from edge.web.history import TelemetryHistory

    clock = [1000.0]
    loop = type("Loop", (), {"stats": LoopStats(frames=1, fps=30.0), "camera_model": None})()
    history = TelemetryHistory(loop, clock=lambda: clock[0])
    for _ in range(900):                        # 90 s at 10 a second
        clock[0] += 0.1
        history.sample()
    got = history.since(-1)
    assert got["now"] == pytest.approx(90.0) and got["t"][0] >= 30.0 - 1e-6 and len(got["t"]) in (600, 601)
    assert got["fps"] == [30.0] * len(got["t"]) and set(got["score"]) == {None}
    assert history.since(89.5)["t"] == pytest.approx([89.6, 89.7, 89.8, 89.9, 90.0])
    empty = TelemetryHistory(type("Loop", (), {"stats": LoopStats()})())   # before the first frame
    empty.sample()
    assert empty.since(-1)["t"] == []


@pytest.mark.parametrize("console", ["127.0.0.2"], indirect=True)
def test_non_local_bind_requires_the_token(console):
    base, token = console["base"], console["server"].token
    assert token and len(token) >= 32
    token_file = console["state_dir"] / "web-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600 and token_file.read_text().strip() == token
    assert call(base, "/api/state")[0] == 401
    assert call(base, "/api/history")[0] == 401
    assert call(base, "/api/select", {"box": [1, 2, 3, 4]})[0] == 401
    assert call(base, "/api/select", {"box": [1, 2, 3, 4]}, token="x" * len(token))[0] == 401
    assert console["tracker"].inits == []
    assert call(base, "/api/state", token=token)[0] == 200
    assert call(base, f"/api/state?token={token}")[0] == 200
    assert call(base, "/api/select", {"box": [40, 30, 24, 20]}, token=token)[0] == 200
    assert wait_for(lambda: console["tracker"].inits == [(40.0, 30.0, 24.0, 20.0)])
    with urllib.request.urlopen(base + "/", timeout=5) as resp:   # the page itself holds no secret
        assert b"edge-track" in resp.read()


def headless_chromium():
    """A headless Chromium (root needs --no-sandbox; a fresh profile per run)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_page_in_headless_chromium(console):
    browser = headless_chromium()
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

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


CHART_INK = """
// Per chart canvas: points drawn, and pixels near each series' colour inside the plot area (below
// the title line, whose legend is written in the same colours).
const near = (d, i, c) => Math.abs(d[i] - c[0]) + Math.abs(d[i + 1] - c[1]) + Math.abs(d[i + 2] - c[2]) < 90;
const out = {};
for (const chart of CHARTS) {
  const canvas = document.getElementById(chart.id), dpr = window.devicePixelRatio || 1;
  const top = Math.ceil(16 * dpr), height = canvas.height - top - Math.ceil(13 * dpr);
  const d = canvas.getContext("2d").getImageData(0, top, canvas.width, height).data;
  const colours = chart.series.map((s) => [1, 3, 5].map((k) => parseInt(s.color.slice(k, k + 2), 16)));
  const ink = colours.map(() => 0);
  let drawn = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] !== 0x18 || d[i + 1] !== 0x18 || d[i + 2] !== 0x18) drawn++;
    colours.forEach((c, k) => { if (near(d, i, c)) ink[k]++; });
  }
  out[chart.id] = { points: Number(canvas.dataset.points || 0), drawn: drawn, ink: ink,
                    width: canvas.clientWidth, height: canvas.clientHeight };
}
return out;
"""


def test_charts_of_the_last_minute_are_drawn_beside_the_video(console, tmp_path):
    base = console["base"]
    call(base, "/api/select", {"box": [200, 150, 60, 50]})
    assert wait_for(lambda: console["loop"].state == "TRACKING")
    browser = headless_chromium()
    from selenium.webdriver.common.by import By

    try:
        browser.set_page_load_timeout(20)
        browser.get(base + "/")
        # Every chart has its series drawn after a few answers from /api/history (each line grows
        # with the seconds it covers on the minute-wide axis: a loaded machine takes longer).
        assert wait_for(lambda: all(c["points"] > 20 and all(ink > 10 for ink in c["ink"])
                                    for c in browser.execute_script(CHART_INK).values()), timeout=40)
        assert wait_for(lambda: browser.execute_script(
            "const i = document.getElementById('live'); return i.complete && i.naturalWidth > 0;"), timeout=10)
        charts = browser.execute_script(CHART_INK)
        assert set(charts) == {"chart-score", "chart-error", "chart-rate", "chart-fps", "chart-latency"}
        for name, chart in charts.items():
            assert chart["width"] > 200 and chart["height"] > 50, name
            assert chart["drawn"] > 500, name                              # grid, labels and lines
            assert all(ink > 10 for ink in chart["ink"]), (name, chart["ink"])   # each series has its line
        # Beside the video, not below it: the charts start level with the live view, to its right.
        live = browser.find_element(By.ID, "live").rect
        first = browser.find_element(By.ID, "chart-score").rect
        assert first["x"] >= live["x"] + live["width"] and abs(first["y"] - live["y"]) < 40
        shot = tmp_path / "console.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10000
        if os.environ.get("EDGE_TRACK_SCREENSHOT"):      # a copy to look at
            shutil.copy(shot, os.environ["EDGE_TRACK_SCREENSHOT"])
    finally:
        browser.quit()


# -- cross-site requests (a web page in a browser on the device, DNS rebinding) -----------------

def request(base, method, path, body=b"", headers=None):
    """One request carrying exactly these headers (a value of None leaves the header out)."""
    netloc = urlsplit(base).netloc
    host, port = netloc.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in ({"Host": netloc} | (headers or {})).items():
            if value is not None:
                conn.putheader(key, value)
        if method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if method == "POST" else None)
        resp = conn.getresponse()
        if resp.headers.get("Content-Type", "").startswith("multipart/"):
            return resp.status, None
        data = resp.read()
        return resp.status, (json.loads(data) if resp.headers.get("Content-Type") == "application/json" else data)
    finally:
        conn.close()


JSON = {"Content-Type": "application/json"}


def moved_nothing(console):
    time.sleep(0.2)
    return console["tracker"].inits == [] and not console["loop"].dry_run


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None, "text/json", "application/jsonp"])
def test_state_changes_need_a_json_content_type(console, ctype):
    # A cross-site form or a no-cors fetch can only send these; application/json needs a CORS preflight.
    base = console["base"]
    for path, body in (("/api/outputs", b'{"dry_run": true}'), ("/api/select", b'{"box": [40, 30, 24, 20]}')):
        status, reply = request(base, "POST", path, body, {"Content-Type": ctype})
        assert status == 415 and "application/json" in reply["error"]
    assert moved_nothing(console)
    assert request(base, "POST", "/api/outputs", b'{"dry_run": true}',
                   {"Content-Type": "Application/JSON; charset=utf-8"})[0] == 200
    assert console["loop"].dry_run


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
                                  "localhost.evil.example", "[::2]:{port}", "192.168.1.9:{port}", "local host",
                                  "127.0.0.1:{port}:80"])
def test_other_host_names_are_refused(console, host):
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header gives it away.
    base = console["base"]
    host = host.format(port=urlsplit(base).port)
    for method, path, body in (("GET", "/api/state", b""), ("GET", "/stream.mjpg", b""), ("GET", "/", b""),
                               ("POST", "/api/outputs", b'{"dry_run": true}'),
                               ("POST", "/api/select", b'{"box": [40, 30, 24, 20]}')):
        status, reply = request(base, method, path, body, {"Host": host, **JSON})
        assert status == 403 and "Host" in reply["error"], (method, path)
    assert moved_nothing(console)


def test_loopback_names_are_accepted_on_any_port(console):
    base = console["base"]
    port = urlsplit(base).port
    # Another port: an ssh tunnel (ssh -L 9000:localhost:8080) keeps the name, not the port.
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST", "localhost:9000"):
        assert request(base, "GET", "/api/state", headers={"Host": host})[0] == 200, host
    assert request(base, "GET", "/api/state", headers={"Host": None})[0] == 400     # HTTP/1.1 needs a Host
    assert request(base, "GET", "/api/state", headers={"Host": f"evil.example, 127.0.0.1:{port}"})[0] == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:1", "http://127.0.0.1",
                                    "file://"])
def test_cross_origin_requests_are_refused(console, origin):
    base = console["base"]
    status, reply = request(base, "POST", "/api/outputs", b'{"dry_run": true}', {"Origin": origin, **JSON})
    assert status == 403 and "origin" in reply["error"].lower()
    assert request(base, "GET", "/api/state", headers={"Origin": origin})[0] == 403
    assert moved_nothing(console)
    # What the page itself sends on its POSTs: its own origin, same as Host.
    assert request(base, "POST", "/api/outputs", b'{"dry_run": true}', {"Origin": base, **JSON})[0] == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_fetch_metadata_from_other_sites_is_refused(console, site):
    base = console["base"]
    for method, path, body in (("POST", "/api/outputs", b'{"dry_run": true}'),
                               ("POST", "/api/select", b'{"box": [40, 30, 24, 20]}'),
                               ("GET", "/api/state", b""), ("GET", "/stream.mjpg", b"")):
        status, reply = request(base, method, path, body, {"Sec-Fetch-Site": site, **JSON})
        assert status == 403 and "Sec-Fetch-Site" in reply["error"], path
    assert moved_nothing(console)
    # A link from another site to the page is fine: the page is static and holds no secret.
    assert request(base, "GET", "/", headers={"Sec-Fetch-Site": site})[0] == 200
    for ok in ("same-origin", "none"):
        assert request(base, "GET", "/api/state", headers={"Sec-Fetch-Site": ok})[0] == 200


@pytest.mark.parametrize("console", ["127.0.0.2"], indirect=True)
def test_beyond_localhost_the_machine_names_are_accepted_and_others_refused(console):
    base, token = console["base"], console["server"].token
    auth = {"Authorization": f"Bearer {token}"}
    name = socket.gethostname().split(".")[0]
    for host in ("127.0.0.2", name, name + ".local", f"{name.upper()}.local:8080"):
        assert request(base, "GET", "/api/state", headers={"Host": host, **auth})[0] == 200, host
    assert request(base, "GET", "/api/state", headers={"Host": "evil.example", **auth})[0] == 403


def test_machine_name_is_refused_when_bound_to_loopback(console):
    if socket.gethostname().lower() in ("localhost", "127.0.0.1"):
        pytest.skip("this machine is named localhost")
    assert request(console["base"], "GET", "/api/state", headers={"Host": socket.gethostname()})[0] == 403


# -- connections: time-outs, a bounded number of threads, quiet disconnects ----------------------

def server_address(console):
    parts = urlsplit(console["base"])
    return parts.hostname, parts.port


def read_until_closed(sock, timeout):
    """What the server sends before it closes the connection; raises socket.timeout if it does not."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_half_sent_requests_time_out_and_do_not_pile_up_threads(console):
    address = server_address(console)
    before = threading.active_count()
    socks = []
    try:
        for _ in range(100):
            sock = socket.create_connection(address, timeout=5)
            sock.sendall(b"POST /api/select HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")  # no end
            socks.append(sock)
        time.sleep(0.5)
        assert threading.active_count() - before <= 40          # bounded, not one thread per connection
        # Each is closed by the server (read_until_closed raises if not; 10 s guards against a hang)
        # at the request deadline (test_a_request_deadline_is_one_for_all_reads, on a fake clock).
        for sock in socks:
            data = read_until_closed(sock, timeout=10)
            assert data == b"" or data.startswith(b"HTTP/1.1 503")
    finally:
        for sock in socks:
            sock.close()
    assert wait_for(lambda: threading.active_count() <= before + 2)
    assert call(console["base"], "/api/state")[0] == 200


def test_a_trickling_request_is_cut_off_at_the_deadline(console):
    # A byte every 0.2 s resets any per-read timeout; the whole request has a deadline instead.
    # The server cuts it off before the 20 s it would take (where it cuts is the next test's).
    sock = socket.create_connection(server_address(console), timeout=5)
    try:
        sock.sendall(b"GET /api/state HTTP/1.1\r\nX-Slow: ")
        with pytest.raises(OSError):
            for _ in range(100):
                sock.sendall(b"a")
                time.sleep(0.2)
    finally:
        sock.close()


def test_a_request_deadline_is_one_for_all_reads():
    """DeadlineReader on a fake clock: every read waits at most what is left of the one deadline,
    and the first read at or past it fails, however steadily the client trickles."""
    from edge.web.connections import DeadlineReader

    clock = FakeClock(start=100.0)
    server, client = socket.socketpair()
    timeouts = []

    class Recording:
        def settimeout(self, t):
            timeouts.append(t)
            server.settimeout(t)

        def recv_into(self, buffer):
            return server.recv_into(buffer)

    reader = DeadlineReader(Recording(), lambda: 105.0, clock=clock)
    got = b""
    try:
        with pytest.raises(TimeoutError):
            for _ in range(100):
                client.sendall(b"a")
                buffer = bytearray(1)
                got += bytes(buffer[:reader.readinto(buffer)])
                clock.advance(0.25)            # a byte every 0.25 s
    finally:
        server.close()
        client.close()
    assert got == b"a" * 20                    # 20 reads fit in the 5 s, the 21st is refused
    assert timeouts == [5.0 - 0.25 * k for k in range(20)]


def test_client_disconnects_are_one_line_at_most(console, capfd, caplog):
    caplog.set_level(logging.INFO)
    address = server_address(console)
    reset = struct.pack("ii", 1, 0)          # SO_LINGER 0: close sends a reset
    for _ in range(20):
        sock = socket.create_connection(address, timeout=5)
        sock.sendall(b"POST /api/select HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"box\"")
        time.sleep(0.05)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
        sock.close()
    for _ in range(3):                        # viewers that vanish mid-stream
        sock = socket.create_connection(address, timeout=5)
        sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.recv(4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
        sock.close()
    time.sleep(1.0)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert len((out + err).splitlines()) + len(caplog.records) <= 23
    assert call(console["base"], "/api/state")[0] == 200


def test_live_view_viewers_are_capped_and_the_api_still_answers(console):
    base, publisher = console["base"], console["publisher"]
    conns, statuses = [], []
    try:
        for _ in range(12):
            conn = http.client.HTTPConnection(*server_address(console), timeout=5)
            conn.request("GET", "/stream.mjpg")
            resp = conn.getresponse()
            statuses.append(resp.status)
            conns.append(conn)
        assert 1 <= statuses.count(200) <= 4 and statuses.count(200) + statuses.count(503) == 12
        for _ in range(5):
            assert call(base, "/api/state")[0] == 200
    finally:
        for conn in conns:
            conn.close()
    assert wait_for(lambda: publisher.viewers == 0)
    with urllib.request.urlopen(base + "/stream.mjpg", timeout=5) as resp:   # slots come back
        assert resp.status == 200


def test_a_viewer_that_stops_reading_is_dropped(console):
    console["server"].httpd.write_timeout = 1.0
    publisher = console["publisher"]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(server_address(console))
    try:
        sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.recv(100)
        assert wait_for(lambda: publisher.viewers == 1)
        assert wait_for(lambda: publisher.viewers == 0, timeout=20)   # its writes timed out
    finally:
        sock.close()
    assert call(console["base"], "/api/state")[0] == 200


# -- every body field checked by type and range, against the frame --------------------------------

@pytest.mark.parametrize("path, raw, why", [
    ("/api/select", {"point": [100, 80], "size": "big"}, "size"),
    ("/api/select", {"point": [100, 80], "size": True}, "size"),
    ("/api/select", {"point": [100, 80], "size": 0}, "size"),
    ("/api/select", {"point": [100, 80], "size": None}, "size"),
    ("/api/select", {"point": [100, 80], "size": 1e30}, "size"),
    ("/api/select", {"box": [0, 0, 1e30, 10]}, "320x240"),
    ("/api/select", {"box": [-50, 0, 20, 10]}, "320x240"),
    ("/api/select", {"box": [400, 10, 20, 20]}, "320x240"),
    ("/api/select", {"box": [300, 10, 40, 20]}, "320x240"),
    ("/api/select", {"point": [500, 80]}, "320x240"),
    ("/api/select", {"point": [-1, 80]}, "320x240"),
    ("/api/select", {"box": "40,30,24,20"}, "4 numbers"),
    ("/api/select", {"box": [40, 30, 24, 20], "point": [1, 2]}, "either"),
    ("/api/select", {"box": [40, 30, 24, 20], "extra": 1}, "extra"),
    ("/api/select", {"boxx": [40, 30, 24, 20]}, "boxx"),
    ("/api/select", {}, "box"),
    ("/api/select", b'{"box": [40, 30, 24, 1' + b"0" * 400 + b"]}", "finite"),
    ("/api/select", b"[" * 3000, "JSON"),
    ("/api/select", b'{"box": [NaN, 30, 24, 20]}', "finite"),
    ("/api/outputs", {"dry_run": 1}, "dry_run"),
    ("/api/outputs", {"dry_run": "true"}, "dry_run"),
    ("/api/outputs", {}, "dry_run"),
    ("/api/outputs", {"dry_run": True, "send": True}, "send"),
    ("/api/stop", {"now": True}, "now"),
    ("/api/recenter", [], "JSON object"),
])
def test_every_body_field_is_checked(console, path, raw, why):
    body = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    status, reply = request(console["base"], "POST", path, body, JSON)
    assert status == 400 and why in reply["error"] and "\n" not in reply["error"]
    assert moved_nothing(console) and console["out"].recentered == 0


def test_a_point_near_the_edge_selects_the_part_inside_the_frame(console):
    status, reply = call(console["base"], "/api/select", {"point": [10, 230], "size": 40})
    assert status == 200 and reply["box"] == [0.0, 210.0, 30.0, 30.0]
    assert wait_for(lambda: console["tracker"].inits == [(0.0, 210.0, 30.0, 30.0)])
    assert call(console["base"], "/api/select", {"box": [0, 0, 320, 240]})[0] == 200   # the whole frame is fine


class StubLoop:
    """What the console reads of a loop (no frame yet), and the target requests it was handed."""

    camera_model, dry_run = None, False

    def __init__(self):
        self.requests = []

    def request(self, req):
        self.requests.append(req)


@contextlib.contextmanager
def console_on(loop, tmp_path):
    """A console in front of ``loop`` (no live view); yields its base URL."""
    server = ConsoleServer(loop, None, load_config({}), port=0, state_dir=str(tmp_path)).start()
    try:
        host, port = server.httpd.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.close()


def test_a_target_before_the_first_frame_is_refused(tmp_path):
    loop = StubLoop()
    with console_on(loop, tmp_path) as base:
        status, reply = call(base, "/api/select", {"box": [40, 30, 24, 20]})
        assert status == 409 and "frame" in reply["error"] and loop.requests == []


# -- the token file ---------------------------------------------------------------------------------

def test_a_short_token_is_replaced_by_a_new_0600_file(tmp_path):
    path = tmp_path / "web-token"
    path.write_text("short\n")
    os.chmod(path, 0o644)
    token = load_or_create_token(str(tmp_path))
    assert len(token) >= 32 and path.read_text().strip() == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["web-token"]           # no temporary file left behind
    assert load_or_create_token(str(tmp_path)) == token             # kept across restarts


def test_a_good_token_with_a_loose_mode_is_kept_and_its_mode_fixed(tmp_path):
    path = tmp_path / "web-token"
    path.write_text("k" * 43 + "\n")
    os.chmod(path, 0o644)
    assert load_or_create_token(str(tmp_path)) == "k" * 43
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("content", ["short\n", "t" * 43 + "\n"])
def test_a_symlinked_token_file_is_refused(tmp_path, content):
    target = tmp_path / "elsewhere"
    target.write_text(content)
    os.chmod(target, 0o644)
    state = tmp_path / "state"
    state.mkdir()
    (state / "web-token").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_or_create_token(str(state))
    assert target.read_text() == content and stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_a_token_path_that_is_not_a_file_is_refused(tmp_path):
    (tmp_path / "web-token").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        load_or_create_token(str(tmp_path))


ATTACK = """<!doctype html><title>a page on another site</title>
<form id="form" method="POST" action="{console}/api/outputs" enctype="text/plain">
<input name='{{"dry_run": true, "pad": "' value='"}}'></form>
<script>
const hit = (path, body, type) => fetch("{console}" + path, {{method: "POST", mode: "no-cors",
  headers: {{"Content-Type": type}}, body: body}}).catch(() => null);
Promise.all([hit("/api/select", '{{"box": [40, 30, 24, 20]}}', "text/plain"),
             hit("/api/outputs", '{{"dry_run": true}}', "text/plain"),
             fetch("{console}/api/select", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                   body: '{{"box": [40, 30, 24, 20]}}'}}).catch(() => null)])
  .then(() => {{ document.title = "sent"; document.getElementById("form").submit(); }});
</script>"""


def test_a_page_on_another_site_cannot_drive_the_console(console):
    # The attack the issue describes, in a real browser: a page on another site (localhost:X is not
    # the site of 127.0.0.1:Y) posts to the console with a form and with no-cors / CORS fetches.
    from http.server import BaseHTTPRequestHandler, HTTPServer

    page = ATTACK.format(console=console["base"]).encode()

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    attacker = HTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    browser = headless_chromium()
    try:
        browser.set_page_load_timeout(20)
        browser.get(f"http://localhost:{attacker.server_address[1]}/")
        assert wait_for(lambda: browser.title != "a page on another site", timeout=10)   # all sent
        time.sleep(1.0)
        assert console["tracker"].inits == [] and not console["loop"].dry_run
    finally:
        browser.quit()
        attacker.shutdown()
        attacker.server_close()


@pytest.mark.parametrize("body", [{"point": [100, 100], "size": 1}, {"box": [40, 30, 1.5, 20]}])
def test_a_target_the_loop_would_refuse_is_400_not_ok(console, body):
    # One rule (edge.target.fit_target) for the console and the loop: no 200 for a box the loop drops.
    status, reply = call(console["base"], "/api/select", body)
    assert status == 400 and "2 px" in reply["error"] and "\n" not in reply["error"]
    assert moved_nothing(console)


def test_fit_target_lives_with_the_targets():
    from edge.target import MIN_SIDE_PX, fit_target
    assert fit_target((-10, 0, 20, 10), 320, 240) == (0.0, 0.0, 10.0, 10.0)
    with pytest.raises(ConfigError, match=f"{MIN_SIDE_PX:g} px"):
        fit_target((0, 0, 1, 1), 320, 240)


def test_a_target_during_an_outage_is_409(tmp_path):
    from edge.runtime.loop import LoopStats

    class CameraGone(StubLoop):
        camera_model = type("Cam", (), {"width": 320, "height": 240})()
        stats = LoopStats(outage=True)

    loop = CameraGone()
    with console_on(loop, tmp_path) as base:
        status, reply = call(base, "/api/select", {"box": [40, 30, 24, 20]})
        assert status == 409 and "no signal" in reply["error"] and loop.requests == []
        loop.stats.outage = False
        assert call(base, "/api/select", {"box": [40, 30, 24, 20]})[0] == 200
        assert len(loop.requests) == 1


def test_a_page_open_across_a_restart_gets_the_new_minute(console):
    """The page asks for what came after its last sample, in the old process's time; a restarted
    service's clock starts again at 0, so 'since' lies in its future: the answer is the whole minute."""
    base = console["base"]
    assert wait_for(lambda: call(base, "/api/history")[1]["t"])
    status, reply = call(base, "/api/history?since=3600")
    assert status == 200 and reply["t"] and reply["t"][-1] <= reply["now"] < 3600


@pytest.mark.parametrize("which,text", [("profile", "control: [unclosed\n"), ("profile", "- just\n- a list\n"),
                                        ("profile", "control: 5\n"), ("intrinsics", "'a string'\n"),
                                        ("intrinsics", "K: {{\n")])
def test_a_broken_calibration_file_is_a_clear_error_not_a_500(tmp_path, console, caplog, which, text):
    """The files are read when the page asks, and may have been edited since the start: an error
    naming the file, never 'internal error' and a traceback in the journal."""
    path = tmp_path / f"{which}.yaml"
    path.write_text(text)
    cfg = console["server"].httpd.console.cfg
    if which == "profile":
        cfg.control.profile = str(path)
    else:
        cfg.camera.calibration = str(path)
    with caplog.at_level(logging.ERROR, logger="edge"):
        status, reply = call(console["base"], "/api/calibration")
    assert status == 200, reply
    assert reply[which] is None and str(path) in reply["errors"][which], reply
    assert not [r for r in caplog.records if r.exc_info], caplog.text


def test_history_samples_slowly_when_no_page_asks_and_keeps_the_minute():
    """With no page open the sampler runs at a fifth of the rate (a 2-core device has better uses
    for the CPU), so a page opened later still finds the last minute, at 2 samples a second;
    once a page asks, 10 a second, until it has not asked for a few seconds."""
    from edge.runtime.loop import LoopStats
    from edge.web.history import IDLE_PERIOD_S, PERIOD_S, WATCHED_FOR_S, TelemetryHistory

    clock = [1000.0]
    loop = type("Loop", (), {"stats": LoopStats(frames=1, fps=30.0), "camera_model": None})()
    history = TelemetryHistory(loop, clock=lambda: clock[0])
    assert history.next_wait() == IDLE_PERIOD_S > PERIOD_S
    for _ in range(200):                        # 100 s with nobody watching
        clock[0] += history.next_wait()
        history.sample()
    got = history.since(-1)                     # a page opens
    assert got["t"][0] <= got["now"] - 59 and len(got["t"]) >= 60 / IDLE_PERIOD_S
    assert history.next_wait() == PERIOD_S
    clock[0] += WATCHED_FOR_S - 0.5
    assert history.next_wait() == PERIOD_S      # still watched
    clock[0] += 1.0
    assert history.next_wait() == IDLE_PERIOD_S  # the page went away
