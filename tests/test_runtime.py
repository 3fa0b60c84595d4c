"""The device loop: fail-safes, reconnects, watchdog, signals, and the closed loop in the simulator."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import NANOTRACK_DIR, make_clip_frames
from edge.camera.base import Frame
from edge.camera.grabber import LatestFrameGrabber
from edge.config import load_config
from edge.errors import SourceError
from edge.io.sdnotify import SystemdNotifier
from edge.outputs.base import LogOutput
from edge.runtime.loop import TrackingLoop
from edge.sim.run import OracleTracker, run_sim
from edge.sim.world import SimConfig
from edge.target import TargetRequest
from edge.trackers.contract import Capabilities, TrackerInfo
from edge.trackers.state import TrackResult, TrackState


class RecordingOutput(LogOutput):
    name = "recording"

    def __init__(self):
        super().__init__()
        self.updates = []

    def send(self, update):
        super().send(update)
        self.updates.append(update)


class ListSource:
    def __init__(self, frames, fail_after=None, period_s=0.0):
        self.frames, self.fail_after, self.period_s = frames, fail_after, period_s

    def __iter__(self):
        for i, f in enumerate(self.frames):
            if self.fail_after is not None and i >= self.fail_after:
                raise OSError("device unplugged")
            if self.period_s:
                time.sleep(self.period_s)     # a camera delivers at its frame rate
            yield Frame(f, time.monotonic_ns(), i)

    def close(self):
        pass


# -- grabber ---------------------------------------------------------------------------------

def test_grabber_returns_the_newest_frame_once_and_counts_drops():
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(50)]
    grabber = LatestFrameGrabber(lambda: ListSource(frames), reconnect=False).start()
    time.sleep(0.2)
    frame = grabber.get(timeout=1.0)
    assert frame.image[0, 0, 0] == 49                  # the newest, not the first
    assert grabber.get(timeout=0.1) is None            # never the same frame twice
    assert grabber.finished and grabber.dropped == 49
    grabber.stop()


def test_grabber_reconnects_with_backoff_after_a_disconnect():
    attempts = []

    def opener():
        attempts.append(time.monotonic())
        if len(attempts) == 2:
            raise SourceError("camera not found")      # still unplugged on the first retry
        return ListSource([np.zeros((4, 4, 3), np.uint8)] * 3, fail_after=2 if len(attempts) == 1 else None)

    grabber = LatestFrameGrabber(opener, reconnect_initial_s=0.05, reconnect_max_s=0.2).start()
    seen = 0
    deadline = time.monotonic() + 3
    while grabber.reconnects < 1 and time.monotonic() < deadline:
        seen += grabber.get(timeout=0.05) is not None
    grabber.stop()
    assert len(attempts) >= 3 and grabber.reconnects >= 1
    assert attempts[2] - attempts[1] >= attempts[1] - attempts[0] - 0.02   # backoff grows


# -- loop ------------------------------------------------------------------------------------

class ScriptedTracker:
    """Returns scripted (box, score, state) per update; records init calls."""

    capabilities = Capabilities(widen_search=True)
    info = TrackerInfo("fake", "fake", "none")
    base_search_factor = 4.0
    box = None

    def __init__(self, script):
        self.script = list(script)
        self.search_factor = 4.0
        self.factors = []
        self.inits = []

    def set_search_factor(self, f):
        self.search_factor = f

    def init(self, frame, box):
        self.inits.append(tuple(box))
        return TrackResult(tuple(box), 1.0, TrackState.TRACKING, 0)

    def update(self, frame):
        box, score, state = self.script.pop(0) if self.script else ((300, 220, 40, 40), 0.9, TrackState.TRACKING)
        self.factors.append(self.search_factor)
        return TrackResult(box, score, state, 0)


class QueueGrabber:
    def __init__(self, frames):
        self.frames = list(frames)
        self.finished = False
        self.dropped = 0

    def get(self, timeout):
        if not self.frames:
            self.finished = True
            return None
        item = self.frames.pop(0)
        if item is None:           # a gap: no frame within the timeout
            time.sleep(timeout)
            return None
        return Frame(item, time.monotonic_ns(), 0)

    def stop(self):
        pass


def frame640():
    return np.zeros((480, 640, 3), np.uint8)


def test_lost_holds_the_gimbal_widens_the_search_and_recovers():
    T, L = TrackState.TRACKING, TrackState.LOST
    script = [((400, 240, 40, 40), 0.9, T)] + [((400, 240, 40, 40), 0.1, L)] * 4 + [((330, 240, 40, 40), 0.9, T)] * 2
    tracker = ScriptedTracker(script)
    out = RecordingOutput()
    cfg = load_config({"tracking": {"widen_step": 1.5, "max_search_factor": 10.0}})
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 8), outputs=[out], config=cfg,
                        initial_target=TargetRequest(roi="center:40x40"))
    loop.run(threading.Event())
    states = [u.state for u in out.updates]
    assert states == ["TRACKING"] + ["LOST"] * 4 + ["TRACKING"] * 2
    assert out.updates[0].command.active and out.updates[0].command.yaw_rate_dps > 0   # target right of centre
    assert all(not u.command.active and u.command.yaw_rate_dps == 0 for u in out.updates[1:5])
    assert tracker.factors[1:6] == [4.0, 6.0, 9.0, 10.0, 10.0]     # x1.5 per frame, capped
    assert tracker.factors[6] == 4.0                                 # back to normal once re-acquired
    assert tracker.inits == [(300.0, 220.0, 40.0, 40.0)]
    assert out.stops >= 1                                            # shutdown stops the outputs


def test_non_finite_network_output_never_moves_the_gimbal(tiny_model_path):
    from edge.engines import open_engine
    from edge.engines.base import EngineOutput
    from edge.trackers.mixformer import MixFormerTracker

    engine = open_engine(tiny_model_path)
    real_run = engine.run
    calls = []

    def flaky(search):
        calls.append(1)
        out = real_run(search)
        return (EngineOutput(np.array([np.nan, 0.5, np.inf, 0.2], np.float32), out.score_logit) if len(calls) % 2
                else out)

    engine.run = flaky
    out = RecordingOutput()
    frames, gt = make_clip_frames(12, size=(320, 240))
    loop = TrackingLoop(tracker=MixFormerTracker(engine), grabber=QueueGrabber(frames), outputs=[out],
                        config=load_config({}), initial_target=TargetRequest(box=tuple(gt[0])))
    loop.run(threading.Event())
    for u in out.updates:
        assert np.isfinite([u.command.yaw_rate_dps, u.command.pitch_rate_dps]).all()
        assert abs(u.command.yaw_rate_dps) <= 60 and abs(u.command.pitch_rate_dps) <= 60
        if u.state == "LOST":
            assert not u.command.active
    assert any(u.state == "LOST" for u in out.updates)


def test_no_frames_stops_outputs_and_starves_the_watchdog(tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.settimeout(0.01)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "20000"})
    out = RecordingOutput()
    frames = [frame640()] * 5 + [None] * 6 + [frame640()] * 3
    cfg = load_config({"camera": {"frame_timeout_s": 0.25}})
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=QueueGrabber(frames), outputs=[out], config=cfg,
                        notifier=notifier, initial_target=TargetRequest(roi="center:40x40"))
    received = []

    def drain():
        while True:
            try:
                received.append((time.monotonic(), server.recv(256).decode()))
            except (socket.timeout, BlockingIOError):
                return

    events = []
    while loop.step():
        drain()
        events.append((time.monotonic(), loop.state, out.stops))
        time.sleep(0.005)
    loop.shutdown()
    drain()
    gap_start = events[4][0]
    gap_end = next(t for t, s, _ in events if t > gap_start + 0.5)
    pings = [t for t, m in received if m == "WATCHDOG=1"]
    assert pings and not [t for t in pings if gap_start + 0.05 < t < gap_end - 0.05]   # no ping while starved
    assert any(stops >= 1 and state == "LOST" for _, state, stops in events)          # stop sent, state LOST
    assert any(m == "STOPPING=1" for _, m in received)
    server.close()


def test_target_leaving_the_frame_is_lost_and_never_a_wild_command():
    # The target runs away faster than the head can turn: it leaves the view.
    sim = SimConfig(amplitude_deg=60.0, period_s=3.0, max_rate_dps=15.0, path="lissajous")
    cfg = load_config({"control": {"max_rate_dps": 15.0}})
    report = run_sim(sim, cfg, lambda world: OracleTracker(world), seconds=4.0)
    assert report.lost_frames > 0
    assert report.max_rate_dps <= 15.0 + 1e-9


def test_closed_loop_keeps_the_target_centred_in_the_simulator():
    sim = SimConfig(path="lissajous", amplitude_deg=20.0, period_s=12.0, occlusions=((5.0, 5.5),))
    report = run_sim(sim, load_config({}), lambda world: OracleTracker(world), seconds=12.0)
    # Bounds set from measured runs (mean 0.86, p95 2.3 deg; re-acquired 0.27 s after the occlusion).
    assert report.mean_error_deg < 1.5 and report.p95_error_deg < 3.5
    assert report.reacquire_s[0] is not None and report.reacquire_s[0] < 1.0


def test_closed_loop_with_a_real_tracker_in_the_simulator():
    if not os.path.isdir(NANOTRACK_DIR):
        pytest.skip("needs ../shared/models/opencv (NanoTrack) beside the checkout")
    from edge.evaluation.peers import create_peer

    # OpenCV's tracker cannot change its search region: the loop's LOST search passes it through.
    sim = SimConfig(path="lissajous", amplitude_deg=15.0, period_s=12.0)
    peer = create_peer("nanotrack", NANOTRACK_DIR)
    report = run_sim(sim, load_config({}), lambda world: peer, seconds=8.0)
    assert report.mean_error_deg < 3.0 and report.p95_error_deg < 6.0, report


def test_closed_loop_with_the_bundled_model_and_no_model_configured():
    """A config without model.path gets the default tracker (the catalog's rule): it keeps the
    simulated target centred and finds it again after an occlusion."""
    from edge.build import tracker_for_config
    from edge.trackers.catalog import load_catalog

    cfg = load_config({})
    assert cfg.model.path == ""
    named = load_config({"model": {"path": load_catalog().default().name}})
    assert tracker_for_config(cfg).meta.preset == tracker_for_config(named).meta.preset
    sim = SimConfig(path="lissajous", amplitude_deg=20.0, period_s=12.0, occlusions=((5.0, 5.5),))
    report = run_sim(sim, cfg, lambda world: tracker_for_config(cfg), seconds=8.0)
    # Measured: NanoTrack V3 (the default since 2026-12-07) mean 1.23, p95 4.83 deg, re-acquired 0.53 s
    # after the occlusion; the MixFormerV2 hybrid before it 1.07 / 3.61 deg, 0.37 s. The bounds are
    # those of any real tracker in this loop (test_closed_loop_with_a_real_tracker_in_the_simulator).
    assert report.mean_error_deg < 2.0 and report.p95_error_deg < 6.0, report
    assert report.reacquire_s[0] is not None and report.reacquire_s[0] < 1.0, report


# -- the service as systemd runs it -----------------------------------------------------------

def write_video(path, n=60, size=(320, 240)):
    frames, gt = make_clip_frames(n, size=size)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return gt


def edge_track_cmd():
    return [sys.executable, "-c", "import sys; from edge.cli.main import main; sys.exit(main())"]


def test_service_ready_watchdog_sigterm_and_stop(tmp_path, tiny_model_path):
    from test_outputs import Pty

    video = str(tmp_path / "clip.avi")
    gt = write_video(video)
    pty = Pty(tmp_path)
    log_path = tmp_path / "track.jsonl"
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({
        "camera": {"source": video, "loop_file": True},
        "model": {"path": tiny_model_path},
        "tracking": {"init": ",".join(f"{v:g}" for v in gt[0])},
        "outputs": [{"type": "serial_box", "port": pty.link}],
        "telemetry": {"track_log": str(log_path), "status_interval_s": 0.5},
    }))
    sock_path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(sock_path)
    server.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="1000000", JOURNAL_STREAM="8:1")
    proc = subprocess.Popen(edge_track_cmd() + ["run", "--config", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not any("WATCHDOG=1" in m for m in messages):
            try:
                messages.append(server.recv(512).decode())
            except socket.timeout:
                assert proc.poll() is None, proc.communicate()[1]
        assert messages and messages[0].startswith("READY=1")
        assert any("WATCHDOG=1" in m for m in messages)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - start < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err      # 143: SuccessExitStatus in the unit
    while True:
        try:
            messages.append(server.recv(512).decode())
        except socket.timeout:
            break
    assert "STOPPING=1" in messages
    assert any(line.startswith("<6>") for line in err.splitlines())         # journald priorities
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert records and ({"t_capture_ns", "frame_age_ms", "latency_ms", "state", "box", "score", "command"}
                        <= set(records[0]))
    from edge.gimbal.protocols import boxproto

    msgs = boxproto.BoxParser().feed(pty.read())
    assert msgs and msgs[0].state == "TRACKING" and msgs[-1].state == "IDLE"     # stop sent last
    pty.close()
    server.close()


@pytest.mark.parametrize("case", ["corrupt_config", "missing_model", "bad_source"])
def test_service_bad_input_is_one_line_exit_2(tmp_path, case, tiny_model_path):
    cfg = tmp_path / "device.yaml"
    video = str(tmp_path / "clip.avi")
    write_video(video, n=5)
    cfg.write_text({
        "corrupt_config": "camera: {source: 0, fsp: 3}\n",
        "missing_model": json.dumps({"camera": {"source": video}, "model": {"path": str(tmp_path / "none.onnx")}}),
        "bad_source": json.dumps({"camera": {"source": str(tmp_path / "nope.mp4")},
                                  "model": {"path": tiny_model_path}}),
    }[case])
    proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path):
    import shutil

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    template = open(os.path.join(here, "firmware_scripts", "edge-track.service.in")).read()
    exe = tmp_path / "edge-track"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    unit = tmp_path / "edge-track.service"
    unit.write_text(template.replace("@EXEC@", str(exe)).replace("@CONFIG@", "/etc/edge-track/device.yaml")
                    .replace("@USER@", "edge-track"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("WatchdogSec=10", "WatchDogSec=10"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip() != ""    # the check would catch a typo


@pytest.mark.slow
def test_soak_rss_and_frame_age_stay_flat(tmp_path, tiny_model_path):
    seconds = float(os.environ.get("EDGE_TRACK_SOAK_S", "150"))
    video = str(tmp_path / "clip.avi")
    gt = write_video(video, n=90)
    log_path = tmp_path / "track.jsonl"
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": video, "loop_file": True}, "model": {"path": tiny_model_path},
                               "tracking": {"init": ",".join(f"{v:g}" for v in gt[0])},
                               "telemetry": {"track_log": str(log_path)}}))
    proc = subprocess.Popen(edge_track_cmd() + ["run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    samples = []
    try:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            time.sleep(seconds / 30)
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
            samples.append(rss)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    ages = [json.loads(line)["frame_age_ms"] for line in log_path.read_text().splitlines()]
    third = len(samples) // 3
    growth = max(samples[third:]) - samples[third]
    early, late = np.median(ages[len(ages) // 10: len(ages) // 3]), np.median(ages[-len(ages) // 3:])
    print(f"soak {seconds:.0f} s: {len(ages)} frames, RSS {samples[third]:.1f} -> {samples[-1]:.1f} MB "
          f"(max growth {growth:.1f} MB), frame age median {early:.2f} -> {late:.2f} ms")
    assert growth < 15.0
    assert late < early * 2 + 5.0


def test_picamera2_source_asks_for_rgb_and_uses_sensor_time():
    from types import SimpleNamespace

    from edge.camera.picamera import PiCamera2Source

    seen = {}

    class Request:
        def make_array(self, name):
            return np.zeros((4, 6, 3), np.uint8)

        def get_metadata(self):
            return {"SensorTimestamp": time.clock_gettime_ns(time.CLOCK_BOOTTIME) - 20_000_000}

        def release(self):
            seen["released"] = seen.get("released", 0) + 1

    class Camera:
        def create_video_configuration(self, main, controls, buffer_count):
            seen["main"], seen["controls"] = main, controls
            return "cfg"

        def configure(self, cfg):
            seen["configured"] = cfg

        def start(self):
            pass

        def capture_request(self):
            return Request()

        def stop(self):
            seen["stopped"] = True

        def close(self):
            pass

    src = PiCamera2Source(640, 480, 30, picamera2_module=SimpleNamespace(Picamera2=Camera))
    frame = next(iter(src))
    src.close()
    assert seen["main"] == {"size": (640, 480), "format": "BGR888"}   # libcamera's name for R,G,B bytes
    age_ms = (time.monotonic_ns() - frame.t_capture_ns) / 1e6
    assert 15 < age_ms < 500 and seen["released"] == 1 and seen["stopped"]


def test_gstreamer_pipeline_without_gstreamer_opencv_is_a_clear_error():
    from edge.camera import open_source

    if "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError, match="no GStreamer support"):
        open_source("nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink")


def test_closed_loop_with_an_angle_commanded_head():
    sim = SimConfig(path="lissajous", amplitude_deg=20.0, period_s=12.0)
    report = run_sim(sim, load_config({"control": {"mode": "angle"}}), lambda world: OracleTracker(world), seconds=10.0)
    assert report.mean_error_deg < 2.0 and report.p95_error_deg < 4.0, report


def test_camera_disconnect_mid_run_stops_then_resumes():
    opened = []

    def opener():
        opened.append(1)
        # First connection dies after 5 frames; the second delivers frames again.
        if len(opened) == 1:
            return ListSource([frame640()] * 5, fail_after=5, period_s=0.01)
        return ListSource([frame640()] * 400, period_s=0.01)

    grabber = LatestFrameGrabber(opener, reconnect_initial_s=0.4, reconnect_max_s=0.4).start()
    out = RecordingOutput()
    cfg = load_config({"camera": {"frame_timeout_s": 0.15}})
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=grabber, outputs=[out], config=cfg,
                        initial_target=TargetRequest(roi="center:40x40"))
    timeline = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (grabber.reconnects and len(out.updates) > 8):
        loop.step()
        timeline.append((loop.state, out.stops, len(out.updates)))
    loop.shutdown()
    lost_with_stop = [i for i, (s, stops, _) in enumerate(timeline) if s == "LOST" and stops >= 1]
    assert lost_with_stop, "the gap must produce LOST and a stop"
    assert grabber.reconnects == 1
    assert timeline[-1][0] == "TRACKING" and out.updates[-1].command.active        # resumed


def test_file_sources_are_paced_like_a_camera():
    frames = [np.zeros((4, 4, 3), np.uint8)] * 10
    grabber = LatestFrameGrabber(lambda: ListSource(frames), reconnect=False, pace_fps=50).start()
    got, start = 0, time.monotonic()
    while grabber.get(timeout=0.5) is not None:
        got += 1
    elapsed = time.monotonic() - start
    grabber.stop()
    assert got == 10 and grabber.dropped == 0 and elapsed >= 0.15     # 10 frames at 50 fps = 0.2 s


def test_a_camera_that_never_appears_is_one_line_exit_2(tmp_path, tiny_model_path):
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": "/dev/video77", "start_timeout_s": 1.0,
                                          "reconnect_initial_s": 0.1, "reconnect_max_s": 0.2},
                               "model": {"path": tiny_model_path}}))
    start = time.monotonic()
    proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and time.monotonic() - start > 1.0
    last = proc.stderr.strip().splitlines()[-1]
    assert (last.startswith("edge-track: error: camera /dev/video77 gave no frame within 1 s")
            and "Traceback" not in proc.stderr)


def test_track_log_rotates_by_size(tmp_path):
    from edge.runtime.telemetry import TrackLog

    path = str(tmp_path / "track.jsonl")
    log = TrackLog(path, max_bytes=2000, keep=2)
    for i in range(300):
        log.write({"frame": i, "state": "TRACKING", "box": [1.0, 2.0, 3.0, 4.0]})
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["track.jsonl", "track.jsonl.1", "track.jsonl.2"]
    assert all(os.path.getsize(tmp_path / f) < 2100 for f in files)
    last = [json.loads(line)["frame"] for line in open(path)]
    assert last[-1] == 299                       # nothing lost at the head of the stream
    previous = [json.loads(line)["frame"] for line in open(path + ".1")]
    assert previous[-1] + 1 == last[0]           # contiguous across the rotation


def test_a_camera_that_stays_away_is_logged_once_not_per_retry(caplog):
    """Waiting for a missing camera retries quickly; the log says so once, and once more only when
    the reason changes (a journal full of identical lines hides the one that matters)."""
    import logging

    reasons = iter(["no device /dev/video0"] * 6 + ["permission denied"] * 3)

    def opener():
        raise SourceError(next(reasons, "permission denied"))

    with caplog.at_level(logging.DEBUG, logger="edge.camera"):
        grabber = LatestFrameGrabber(opener, reconnect_initial_s=0.01, reconnect_max_s=0.01).start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if sum("still unavailable" in r.getMessage() for r in caplog.records) >= 8:
                break
            time.sleep(0.01)
        grabber.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "no device" in warnings[0] and "permission denied" in warnings[1]
