"""The device loop: fail-safes, reconnects, watchdog, signals, and the closed loop in the simulator."""

import json
import os
import signal
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import NANOTRACK_DIR, REPO, make_clip_frames
from edge.camera.grabber import LatestFrameGrabber
from edge.config import load_config
from edge.errors import SourceError
from edge.io.sdnotify import SystemdNotifier
from edge.runtime.loop import TrackingLoop
from edge.sim.run import OracleTracker, run_sim
from edge.sim.world import SimConfig
from edge.target import TargetRequest
from edge.trackers.state import TrackState
from support.clock import FakeClock
from support.loop_fakes import ListSource, QueueGrabber, RecordingOutput, ScriptedTracker, frame640
from support.media import device_config, write_video
from support.processes import Child, edge_track_cmd
from support.systemd import NotifySocket
from support.waiting import wait_for

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
        attempts.append(clock())
        if len(attempts) == 2:
            raise SourceError("camera not found")      # still unplugged on the first retry
        return ListSource([np.zeros((4, 4, 3), np.uint8)] * 3, fail_after=2 if len(attempts) == 1 else None)

    # The waits go by a fake clock: after the first two (the backoff under test) the grabber
    # waits for its stop, so the attempts end there.
    clock = FakeClock(on_wait=lambda stop: stop.is_set() if len(clock.waits) <= 2 else stop.wait())
    grabber = LatestFrameGrabber(opener, reconnect_initial_s=0.05, reconnect_max_s=0.2, clock_ns=clock.ns,
                                 wait=clock.wait).start()
    assert wait_for(lambda: grabber.reconnects >= 1, timeout=10)
    grabber.stop()
    assert len(attempts) >= 3 and grabber.reconnects >= 1
    assert clock.waits[:2] == [0.05, 0.1]          # backoff grows: x2 after the retry failed too


# -- loop ------------------------------------------------------------------------------------

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


def test_only_a_tracking_answer_moves_the_gimbal():
    """A tracker answer that is not TRACKING (IDLE is in the same enum) holds the head like LOST."""
    box = (400, 240, 40, 40)
    script = [(box, 0.9, TrackState.TRACKING), (box, 0.9, TrackState.IDLE), (box, 0.9, TrackState.TRACKING)]
    out = RecordingOutput()
    loop = TrackingLoop(tracker=ScriptedTracker(script), grabber=QueueGrabber([frame640()] * 4), outputs=[out],
                        config=load_config({}), initial_target=TargetRequest(roi="center:40x40"))
    loop.run(threading.Event())
    assert [u.command.active for u in out.updates] == [True, False, True]
    assert out.updates[1].command.yaw_rate_dps == 0 and out.updates[1].state == "LOST"


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
    # One fake clock for the loop, the watchdog and the camera: a frame takes 1/30 s, a gap the
    # loop's 0.1 s wait for a frame.
    clock = FakeClock()
    server = NotifySocket(tmp_path, clock=clock)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": server.path, "WATCHDOG_USEC": "20000"}, clock=clock)
    out = RecordingOutput()
    frames = [frame640()] * 5 + [None] * 6 + [frame640()] * 3
    cfg = load_config({"camera": {"frame_timeout_s": 0.25}})
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=QueueGrabber(frames, clock=clock), outputs=[out],
                        config=cfg, notifier=notifier, initial_target=TargetRequest(roi="center:40x40"),
                        clock=clock)
    received = server.messages

    events = []
    while loop.step():
        server.drain()
        events.append((clock(), loop.state, out.stops))
    loop.shutdown()
    server.drain()
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

def test_service_ready_watchdog_sigterm_and_stop(tmp_path, tiny_model_path):
    from support.seams import Pty

    pty = Pty(tmp_path)
    log_path = tmp_path / "track.jsonl"
    cfg = device_config(tmp_path, tiny_model_path, outputs=[{"type": "serial_box", "port": pty.link}],
                        telemetry={"track_log": str(log_path), "status_interval_s": 0.5})
    notify = NotifySocket(tmp_path)
    env = dict(notify.env, WATCHDOG_USEC="1000000", JOURNAL_STREAM="8:1")
    with Child(edge_track_cmd() + ["run", "--config", str(cfg)], env=env) as child:
        child.wait_until(lambda: any("WATCHDOG=1" in m for m in notify.texts()), guard_s=60)
        messages = notify.texts()
        assert messages and messages[0].startswith("READY=1")
        assert any("WATCHDOG=1" in m for m in messages)
        # The stop is prompt because the handler only sets the loop's stop event (test_stop_signals);
        # the time limit guards against a hang, it is not what is asserted.
        assert child.stop(signal.SIGTERM, guard_s=10), child.err
    err = child.err
    assert child.returncode == 128 + signal.SIGTERM, err      # 143: SuccessExitStatus in the unit
    messages = notify.texts()
    assert "STOPPING=1" in messages
    assert any(line.startswith("<6>") for line in err.splitlines())         # journald priorities
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert records and ({"t_capture_ns", "frame_age_ms", "latency_ms", "state", "box", "score", "command"}
                        <= set(records[0]))
    from edge.gimbal.protocols import boxproto

    msgs = boxproto.BoxParser().feed(pty.read())
    assert msgs and msgs[0].state == "TRACKING" and msgs[-1].state == "IDLE"     # stop sent last
    pty.close()
    notify.close()


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
    here = REPO
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
    log_path = tmp_path / "track.jsonl"
    cfg = device_config(tmp_path, tiny_model_path, n=90, telemetry={"track_log": str(log_path)})
    samples = []
    with Child(edge_track_cmd() + ["run", "--config", str(cfg)], stdout=subprocess.DEVNULL) as child:
        start = time.monotonic()
        while time.monotonic() - start < seconds:      # how long it soaks, not a bound on anything
            time.sleep(seconds / 30)
            with open(f"/proc/{child.proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
            samples.append(rss)
        child.stop(signal.SIGTERM, guard_s=10)
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
    # A fake clock, and a consumer that takes each frame before the next is due: each wait of
    # the grabber goes on when the test lets it.
    due = threading.Semaphore(0)
    clock = FakeClock(on_wait=lambda stop: not due.acquire(timeout=10) or stop.is_set())
    grabber = LatestFrameGrabber(lambda: ListSource(frames), reconnect=False, pace_fps=50, clock_ns=clock.ns,
                                 wait=clock.wait)
    start, got = clock.ns(), []
    grabber.start()
    while True:
        due.release()
        frame = grabber.get(timeout=10)
        if frame is None:
            break
        got.append(frame)
    grabber.stop()
    assert len(got) == 10 and grabber.dropped == 0 and grabber.finished
    assert clock.waits == [pytest.approx(0.02)] * 10                   # 10 frames at 50 fps = 0.2 s
    assert [f.t_capture_ns - start for f in got] == [pytest.approx(20e6 * (i + 1)) for i in range(10)]


def test_a_camera_that_never_appears_is_one_line_exit_2(tmp_path, tiny_model_path):
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": "/dev/video77", "start_timeout_s": 1.0,
                                          "reconnect_initial_s": 0.1, "reconnect_max_s": 0.2},
                               "model": {"path": tiny_model_path}}))
    # That it waited the whole start_timeout_s first is test_startup_progress's, on a fake clock.
    proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
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
