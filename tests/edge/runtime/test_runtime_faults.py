"""The device loop under faults (#13): a full disk, a vanished image folder, an outage in the status,
start-up order, measured latency and counters, and targets that make no sense for the frame."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edge.camera import open_source
from edge.camera.base import Frame
from edge.camera.grabber import LatestFrameGrabber
from edge.config import load_config
from edge.errors import EdgeTrackError
from edge.io.sdnotify import SystemdNotifier
from edge.outputs.base import RemoteTarget
from edge.runtime.loop import TrackingLoop
from edge.runtime.telemetry import TrackLog
from edge.target import TargetRequest
from support.disk import FillingDisk, whole_json_lines
from support.loop_fakes import QueueGrabber, RecordingOutput, ScriptedTracker, frame640
from support.media import device_config, write_video
from support.processes import Child, edge_track_cmd
from support.systemd import NotifySocket
from support.waiting import run_in_thread

# -- 1. a full disk under the track log ----------------------------------------------------------

def test_full_disk_under_the_track_log_warns_once_and_tracking_goes_on(tmp_path, records):
    path = str(tmp_path / "track.jsonl")
    disks = []

    def opener(p):
        disks.append(FillingDisk(p, capacity=3000))
        return disks[-1]

    track_log = TrackLog(path, opener=opener)
    out = RecordingOutput()
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=QueueGrabber([frame640()] * 60), outputs=[out],
                        config=load_config({}), track_log=track_log, initial_target=TargetRequest(roi="center:40x40"))
    loop.run(threading.Event())
    assert len(out.updates) == 59 and loop.stats.frames == 60          # every frame tracked and sent
    assert disks[0].failures >= 1
    warnings = records.lines(logging.WARNING, "track log")
    assert len(warnings) == 1, warnings
    lines = whole_json_lines(path)                                         # never half a line
    assert 0 < len(lines) < 60 and track_log.dropped == 60 - len(lines)


def test_track_log_writes_again_once_there_is_room(tmp_path, records):
    path = str(tmp_path / "track.jsonl")
    now = [0.0]
    disk = {}

    def opener(p):
        disk["f"] = FillingDisk(p, capacity=200)
        return disk["f"]

    log = TrackLog(path, retry_s=10.0, clock=lambda: now[0], opener=opener)
    for i in range(20):
        log.write({"frame": i, "pad": "x" * 20})
        now[0] += 1.0
    attempts_while_full = disk["f"].failures
    assert attempts_while_full <= 3                   # backs off instead of hammering a full disk
    disk["f"].capacity = 10**6                        # space was freed
    for i in range(20, 40):
        log.write({"frame": i, "pad": "x" * 20})
        now[0] += 1.0
    log.close()
    frames = [r["frame"] for r in whole_json_lines(path)]
    # 4 lines fit; the 5th fails at t=4 s, the retry at 14 s fails, the one at 24 s succeeds.
    assert frames == [0, 1, 2, 3] + list(range(24, 40))
    assert len(records.lines(logging.WARNING, "track log")) == 1
    assert records.lines(logging.INFO, "track log: writing again")


def test_full_disk_in_the_service_keeps_tracking(tmp_path, tiny_model_path):
    """The kernel's own partial write: the service runs with a file size limit (EFBIG, the same
    code path as ENOSPC) and keeps tracking until SIGTERM, with exit 143 (128 + 15)."""
    log_path = tmp_path / "track.jsonl"
    cfg = device_config(tmp_path, tiny_model_path, telemetry={"track_log": str(log_path), "status_interval_s": 0.2})

    # The limit is set by a small exec wrapper, not preexec_fn: that runs Python in a fork of this
    # (threaded: onnxruntime, JAX) process, which can deadlock.
    limited = [sys.executable, "-c", "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
               "(4000, 4000)); os.execv(sys.argv[1], sys.argv[1:])"]
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    with Child(limited + edge_track_cmd() + ["run", "--config", str(cfg)], env=env) as child:
        child.wait_until(lambda: log_path.exists() and log_path.stat().st_size > 3000, guard_s=60)
        time.sleep(2.0)                                # well past the point the disk was full
        child.alive()
        assert child.stop(signal.SIGTERM, guard_s=15), child.err
    err = child.err
    assert child.returncode == 128 + signal.SIGTERM, err      # 143: SuccessExitStatus in the unit
    assert "Traceback" not in err
    warned = [line for line in err.splitlines()
              if "track log" in line and ("WARNING" in line or line.startswith("<4>"))]
    assert len(warned) == 1, err
    lines = whole_json_lines(log_path)
    frames = int(re.search(r"stopped after (\d+) frames", err).group(1))
    assert frames > len(lines) + 10                   # it went on tracking after the log stopped


@pytest.mark.parametrize("how", ["deleted", "rotated_away"])
def test_a_track_log_deleted_or_rotated_away_mid_run_is_reopened(tmp_path, records, how):
    """rm, or logrotate's default (rename, then a new file): within CHECK_PATH_S the lines after it
    go to a file at the configured path, not to a deleted inode or the rotated file. The lines of
    that last second still land in the old inode: the rotated file (nothing lost), or for rm gone."""
    from edge.runtime.telemetry import CHECK_PATH_S

    clock = [100.0]
    path = tmp_path / "track.jsonl"
    log = TrackLog(str(path), clock=lambda: clock[0])
    for i in range(10):
        log.write({"frame": i})
    if how == "deleted":
        os.remove(path)
    else:
        os.rename(path, str(path) + ".1")
        path.write_bytes(b"")                         # logrotate's `create`
    log.write({"frame": 10})                          # the same second: the old inode
    clock[0] += CHECK_PATH_S
    for i in range(11, 300):
        log.write({"frame": i})
    log.close()
    assert [r["frame"] for r in whole_json_lines(path)] == list(range(11, 300))
    if how == "rotated_away":
        assert [r["frame"] for r in whole_json_lines(str(path) + ".1")] == list(range(11))
    assert log.dropped == 0
    reopened = records.lines(logging.WARNING, "track log")
    assert len(reopened) == 1 and str(path) in reopened[0], reopened


def test_the_track_log_looks_at_its_path_once_a_second_not_once_a_frame(tmp_path, monkeypatch):
    from edge.runtime import telemetry

    clock = [100.0]
    log = TrackLog(str(tmp_path / "track.jsonl"), clock=lambda: clock[0])
    looked = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        looked.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(telemetry.os, "stat", counting_stat)
    for second in range(3):
        for i in range(30):                           # a second of frames at 30 fps
            log.write({"frame": i})
            clock[0] += 1 / 30
    monkeypatch.undo()
    log.close()
    assert looked.count(str(tmp_path / "track.jsonl")) <= 4, len(looked)


# -- 2. a track log that cannot be opened ----------------------------------------------------------

@pytest.mark.parametrize("where", ["directory", "uncreatable"])
def test_track_log_that_cannot_be_opened_is_one_edge_error(tmp_path, where):
    path = {"directory": str(tmp_path), "uncreatable": "/proc/nope/track.jsonl"}[where]
    with pytest.raises(EdgeTrackError, match="track_log") as info:
        TrackLog(path)
    assert "\n" not in str(info.value)


def test_service_with_a_directory_as_track_log_is_one_line_exit_2(tmp_path, tiny_model_path):
    video = str(tmp_path / "clip.avi")
    write_video(video, n=5)
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": video}, "model": {"path": tiny_model_path},
                               "telemetry": {"track_log": str(tmp_path)}}))
    proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


# -- 3. an image folder that disappears mid-run ------------------------------------------------------

def test_image_folder_vanishing_mid_run_is_an_outage_not_the_end(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(300):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((48, 64, 3), i % 255, np.uint8))
    # As the service builds it for a folder with loop_file: false.
    grabber = LatestFrameGrabber(lambda: open_source(str(folder)), reconnect=False, pace_fps=50,
                                 reconnect_initial_s=0.05, reconnect_max_s=0.1).start()
    out = RecordingOutput()
    cfg = load_config({"camera": {"frame_timeout_s": 0.2}, "telemetry": {"status_interval_s": 0.1}})
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=grabber,
                        outputs=[out], config=cfg, initial_target=TargetRequest(roi="center:20x20"))
    try:
        deadline = time.monotonic() + 10
        while loop.stats.frames < 10 and time.monotonic() < deadline:
            assert loop.step()
        assert loop.state == "TRACKING"
        os.rename(folder, tmp_path / "unplugged")
        gone = time.monotonic()
        while time.monotonic() - gone < 1.0:
            assert loop.step(), "the source vanished: that is an outage, not the end of the run"
        assert not grabber.finished
        assert loop.state == "LOST" and out.stops >= 1
        assert loop.stats.outage
        frames_before = loop.stats.frames
        os.rename(tmp_path / "unplugged", folder)
        deadline = time.monotonic() + 5
        while loop.stats.frames < frames_before + 5 and time.monotonic() < deadline:
            assert loop.step()
        assert loop.stats.frames >= frames_before + 5 and grabber.reconnects >= 1 and not loop.stats.outage
    finally:
        loop.shutdown()


def test_image_folder_that_ends_is_still_the_end(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.zeros((48, 64, 3), np.uint8))
    waits = []

    def wait(stop, seconds):            # the grabber's real waits, recorded
        waits.append(seconds)
        return stop.wait(seconds)

    grabber = LatestFrameGrabber(lambda: open_source(str(folder)), reconnect=False, pace_fps=100,
                                 wait=wait).start()
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=grabber, outputs=[RecordingOutput()],
                        config=load_config({}), initial_target=TargetRequest(roi="center:20x20"))
    assert run_in_thread(lambda: loop.run(threading.Event())), "the loop did not end with the folder"
    assert loop.stats.frames == 5 and grabber.finished and grabber.reconnects == 0
    assert len(waits) == 5 and max(waits) <= 0.01 + 1e-6     # only the pacing: no wait to reopen it


# -- 4. the status during an outage ---------------------------------------------------------------

def test_outage_shows_in_the_status_line_and_systemd_status_and_fps_decays(tmp_path, records):
    notify = NotifySocket(tmp_path)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify.path})
    frames = [frame640()] * 15 + [None] * 12           # 15 frames, then 1.2 s without any
    cfg = load_config({"camera": {"frame_timeout_s": 0.25}, "telemetry": {"status_interval_s": 0.1}})
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=QueueGrabber(frames), outputs=[RecordingOutput()],
                        config=cfg, notifier=notifier, initial_target=TargetRequest(roi="center:40x40"))
    fps_while_tracking = None
    while loop.step():
        if loop.stats.frames == 15 and fps_while_tracking is None:
            fps_while_tracking = loop.stats.fps
        notify.drain()
        time.sleep(0.02)
    statuses = [m[len("STATUS="):] for _, m in notify.drain() if m.startswith("STATUS=")]
    loop.shutdown()
    notify.close()
    assert any(s.startswith("TRACKING") for s in statuses)
    last = statuses[-1]
    assert last.startswith("NO SIGNAL"), statuses
    fps = [float(v) for v in re.findall(r"fps (\d+\.\d)", last)]
    assert fps and fps[0] < fps_while_tracking / 4, (fps_while_tracking, last)
    assert loop.stats.fps < fps_while_tracking / 4
    assert records.lines(logging.INFO, "NO SIGNAL")                # the status line says it too


# -- 5. start-up: nothing is READY before everything was checked -------------------------------------

@pytest.mark.parametrize("calibration", ["garbage", "wrong_size"])
def test_bad_calibration_is_rejected_before_ready(tmp_path, tiny_model_path, calibration):
    video = str(tmp_path / "clip.avi")
    write_video(video, n=10)
    calib = tmp_path / "calib.yaml"
    calib.write_text({"garbage": "K: [1, 2\n",
                      "wrong_size": "K: [500, 0, 320, 0, 500, 240, 0, 0, 1]\nimage_size: [640, 480]\n"}[calibration])
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": video, "calibration": str(calib), "loop_file": True},
                               "model": {"path": tiny_model_path}}))
    notify = NotifySocket(tmp_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True,
                          timeout=60, env=env)
    messages = [m for _, m in notify.drain()]
    notify.close()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "calibration" in proc.stderr, proc.stderr
    assert not any(m.startswith("READY=1") for m in messages), messages


@pytest.mark.parametrize("init", ["900,900,20,20", "0,0,1e30,10", "center:400x100"])
def test_initial_target_outside_the_frame_is_rejected_before_ready(tmp_path, tiny_model_path, init):
    video = str(tmp_path / "clip.avi")
    write_video(video, n=10)                           # 320x240
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": video}, "model": {"path": tiny_model_path},
                               "tracking": {"init": init}}))
    notify = NotifySocket(tmp_path)
    proc = subprocess.run(edge_track_cmd() + ["run", "--config", str(cfg)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, NOTIFY_SOCKET=notify.path))
    messages = [m for _, m in notify.drain()]
    notify.close()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "tracking.init" in proc.stderr, proc.stderr
    assert not any(m.startswith("READY=1") for m in messages), messages


# -- 6. latency and counters --------------------------------------------------------------------

class AgedGrabber(QueueGrabber):
    """Frames that were captured ``age_ms`` before the loop gets them."""

    def __init__(self, frames, age_ms, reconnects=0):
        super().__init__(frames)
        self.age_ns = int(age_ms * 1e6)
        self.reconnects = reconnects

    def get(self, timeout):
        frame = super().get(timeout)
        return None if frame is None else Frame(frame.image, time.monotonic_ns() - self.age_ns, frame.index)


class SlowOutput(RecordingOutput):
    """A serial write that takes its time."""

    def send(self, update):
        time.sleep(0.03)
        super().send(update)


def test_latency_is_capture_to_command_written_not_the_frame_age(tmp_path):
    path = str(tmp_path / "track.jsonl")
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=AgedGrabber([frame640()] * 6, age_ms=20),
                        outputs=[SlowOutput()], config=load_config({}), track_log=TrackLog(path),
                        initial_target=TargetRequest(roi="center:40x40"))
    loop.run(threading.Event())
    st = loop.stats
    assert 15 < st.frame_age_ms < st.latency_ms - 25, (st.frame_age_ms, st.latency_ms)
    rows = whole_json_lines(path)[1:]                  # frame 0 picks the target, nothing is sent
    assert all(r["latency_ms"] >= r["frame_age_ms"] + 25 for r in rows), rows


class LinkedOutput(RecordingOutput):
    """An output reporting link health the way the serial and MAVLink outputs do."""

    name = "serial_box"

    def counters(self):
        return {"reconnects": 2, "write_errors": 5, "bad_commands": 3}


def test_counters_appear_in_the_status_line_and_the_published_state(records):
    from edge.web.server import Console

    cfg = load_config({"telemetry": {"status_interval_s": 0.1}})
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=AgedGrabber([frame640()] * 6, 1, reconnects=1),
                        outputs=[LinkedOutput()], config=cfg, initial_target=TargetRequest(roi="center:40x40"))
    while loop.step():
        time.sleep(0.04)
    status = records.lines(logging.INFO, "TRACKING fps")[-1]
    for text in ("camera reconnects 1", "serial_box reconnects 2 write errors 5 bad commands 3"):
        assert text in status, status
    expected = {"camera": {"reconnects": 1, "drops": 0},
                "serial_box": {"reconnects": 2, "write_errors": 5, "bad_commands": 3}}
    assert loop.stats.counters == expected
    assert Console(loop, None, cfg, token=None).state()["counters"] == expected
    loop.shutdown()


# -- 7. targets are checked against the frame where the loop applies them -----------------------------

class Remote:
    """A target from a link (ground station, $EDSEL): a pixel box in this frame."""

    def __init__(self, box):
        self.box = box

    def box_in(self, width, height):
        return self.box


class PollingOutput(RecordingOutput):
    """Hands the loop one queued target command per poll, as the serial/MAVLink outputs do."""

    def __init__(self, boxes):
        super().__init__()
        self.pending = [RemoteTarget("pixels", pixels=b) for b in boxes]

    def poll(self):
        return [self.pending.pop(0)] if self.pending else []


BAD_BOXES = [(float("nan"), 10, 20, 20), (10, 10, float("inf"), 20), (10, 10, 0, 20), (10, 10, 20, -5),
             (700, 10, 20, 20), (-100, -100, 50, 50), (0, 0, 1e30, 10), (-5e29, 0, 1e30, 480), (0, 0, 3000, 3000),
             (630, 0, 100, 100)]


@pytest.mark.parametrize("box", BAD_BOXES)
@pytest.mark.parametrize("route", ["api", "link", "config"])
def test_a_target_that_makes_no_sense_for_the_frame_is_refused_and_nothing_moves(records, box, route):
    tracker = ScriptedTracker([])
    out = PollingOutput([box] if route == "link" else [])
    request = None if route == "link" else TargetRequest(box=box, source=route)
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 5), outputs=[out],
                        config=load_config({}), initial_target=request)
    loop.run(threading.Event())
    assert tracker.inits == [] and loop.state == "IDLE"
    assert not any(u.command.active for u in out.updates)
    refused = records.lines(logging.ERROR, "ignored target")
    assert len(refused) == 1 and "\n" not in refused[0], refused


def test_a_remote_box_object_is_checked_too(records):
    tracker = ScriptedTracker([])
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 3), outputs=[RecordingOutput()],
                        config=load_config({}), initial_target=TargetRequest(remote=Remote((0, 0, 1e30, 10))))
    loop.run(threading.Event())
    assert tracker.inits == [] and len(records.lines(logging.ERROR, "ignored target")) == 1


def test_a_box_partly_outside_the_frame_is_clipped():
    tracker = ScriptedTracker([])
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 3), outputs=[RecordingOutput()],
                        config=load_config({}), initial_target=TargetRequest(box=(610, 440, 60, 60)))
    loop.run(threading.Event())
    assert tracker.inits == [(610.0, 440.0, 30.0, 40.0)]


def test_a_refused_target_leaves_the_current_one_tracked(records):
    tracker = ScriptedTracker([])
    out = RecordingOutput()
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 6), outputs=[out],
                        config=load_config({}), initial_target=TargetRequest(roi="center:40x40"))
    assert loop.step() and loop.step()
    loop.request(TargetRequest(box=(0, 0, 1e30, 10), source="web"))
    while loop.step():
        assert loop.state == "TRACKING"
    loop.shutdown()
    assert tracker.inits == [(300.0, 220.0, 40.0, 40.0)]


def test_an_unreadable_image_in_a_folder_is_skipped_not_a_replay(tmp_path, records):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0000.png"), np.zeros((48, 64, 3), np.uint8))
    (folder / "0001.png").write_bytes(b"not a png")
    cv2.imwrite(str(folder / "0002.png"), np.zeros((48, 64, 3), np.uint8))
    grabber = LatestFrameGrabber(lambda: open_source(str(folder)), reconnect=False, pace_fps=100,
                                 reconnect_initial_s=0.05, reconnect_max_s=0.1).start()
    got = 0
    deadline = time.monotonic() + 3
    while not grabber.finished and time.monotonic() < deadline:
        got += grabber.get(timeout=0.1) is not None
    grabber.stop()
    assert grabber.finished and grabber.reconnects == 0
    assert got == 2 and grabber.skipped == 1
    assert len(records.lines(logging.WARNING, "0001.png")) == 1


def test_a_video_file_that_fails_mid_stream_ends_and_is_not_replayed():
    from support.loop_fakes import ListSource
    opened = []

    def opener():
        opened.append(1)
        return ListSource([frame640()] * 5, fail_after=3)    # a decoder error, not a vanished device

    grabber = LatestFrameGrabber(opener, reconnect=False, reconnect_initial_s=0.01, reconnect_max_s=0.01).start()
    deadline = time.monotonic() + 3
    while not grabber.finished and time.monotonic() < deadline:
        grabber.get(timeout=0.05)
    grabber.stop()
    assert grabber.finished and len(opened) == 1 and grabber.reconnects == 0


def test_a_target_asked_for_during_an_outage_is_dropped_not_applied_on_a_later_frame(records):
    frames = [frame640()] * 3 + [None] * 8 + [frame640()] * 3     # 0.8 s with no frame, then frames again
    cfg = load_config({"camera": {"frame_timeout_s": 0.2}})
    tracker = ScriptedTracker([])
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber(frames), outputs=[RecordingOutput()], config=cfg)
    while not loop.stats.outage:
        assert loop.step()
    loop.request(TargetRequest(box=(100, 100, 40, 40), source="web"))   # asked for while nothing is seen
    while loop.step():
        pass
    loop.shutdown()
    assert tracker.inits == [] and loop.state == "IDLE"
    assert len(records.lines(logging.INFO, "ignored a stale target request from web")) == 1


def test_a_fresh_target_and_the_configured_one_are_applied():
    frames = [None] * 3 + [frame640()] * 3    # the camera is slow to deliver its first frame
    cfg = load_config({"camera": {"frame_timeout_s": 0.2}})
    tracker = ScriptedTracker([])
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber(frames), outputs=[RecordingOutput()], config=cfg,
                        initial_target=TargetRequest(roi="center:40x40", source="config"))
    while loop.step():
        if loop.stats.frames == 2:
            loop.request(TargetRequest(box=(100, 100, 40, 40), source="web"))
    loop.shutdown()
    assert tracker.inits == [(300.0, 220.0, 40.0, 40.0), (100.0, 100.0, 40.0, 40.0)]
