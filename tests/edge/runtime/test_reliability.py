"""Nothing the filesystem, a client or a second instance does stalls the loop or leaves a head moving
(#31): FIFOs made with os.mkfifo, a track log whose writes hang, copytruncate on a full disk, floods
of target requests, in the loop and over HTTP on 127.0.0.1."""

import errno
import json
import logging
import os
import signal
import threading
import time
import urllib.request

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.runtime.loop import TRACK_LOG_QUEUE, TrackingLoop
from edge.runtime.telemetry import CHECK_PATH_S, TrackLog
from edge.target import TargetRequest
from support.disk import FillingDisk, whole_json_lines
from support.gimbal_frames import sbgc_split
from support.loop_fakes import QueueGrabber, RecordingOutput, ScriptedTracker, frame640
from support.seams import free_tcp_port
from support.waiting import run_in_thread

# -- the track log: a FIFO put at its path, a hung disk, copytruncate ------------------------------

def test_a_track_log_swapped_for_a_fifo_mid_run_never_blocks_the_loop(tmp_path, records):
    clock = [100.0]
    path = tmp_path / "track.jsonl"
    track_log = TrackLog(str(path), clock=lambda: clock[0])
    out = RecordingOutput()
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=QueueGrabber([frame640()] * 40), outputs=[out],
                        config=load_config({}), track_log=track_log, initial_target=TargetRequest(roi="center:40x40"))
    for _ in range(5):
        assert loop.step()
    assert run_in_thread(lambda: loop._workers["track log"].close(5.0))   # the first lines are in the file
    loop._workers.clear()
    os.remove(path)
    os.mkfifo(path)                                  # `rm` then `mkfifo`: open(2) for writing would block
    clock[0] += CHECK_PATH_S
    try:
        assert run_in_thread(lambda: loop.run(threading.Event())), "the loop blocked on the FIFO"
    finally:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)   # frees a writer stuck in open() (before the fix)
        os.close(fd)
    assert loop.stats.frames == 40 and len(out.updates) == 39       # every frame tracked and sent
    assert out.stops >= 1                                            # and the exit stopped the head
    assert track_log.dropped > 0 and os.path.exists(path) and not os.path.isfile(path)
    assert records.lines(logging.WARNING, "not a regular file")


def test_a_fifo_with_a_reader_is_refused_too_never_written(tmp_path):
    path = tmp_path / "track.jsonl"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(ConfigError, match="FIFO"):
            TrackLog(str(path))
        from edge.runtime.telemetry import _open_append

        with pytest.raises(OSError, match="not a regular file"):
            _open_append(str(path))
        try:
            got = os.read(reader, 10)
        except BlockingIOError:
            got = b""
        assert got == b""                            # nothing was written into it
    finally:
        os.close(reader)


class HungDisk:
    """A track log file whose writes hang until ``release`` is set (a network mount that stopped
    answering)."""

    def __init__(self, path):
        self.f = open(path, "ab", buffering=0)
        self.release = threading.Event()
        self.entered = threading.Event()

    def write(self, data):
        self.entered.set()
        self.release.wait()
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_a_hung_track_log_costs_lines_never_frames_commands_or_watchdog_pings(tmp_path, records):
    disk = {}

    def opener(p):
        disk["f"] = HungDisk(p)
        return disk["f"]

    class Pings:
        def __init__(self):
            self.watchdog_pings = 0

        def watchdog(self):
            self.watchdog_pings += 1

        def status(self, text):
            pass

        def stopping(self):
            pass

    frames = TRACK_LOG_QUEUE + 100
    track_log = TrackLog(str(tmp_path / "track.jsonl"), opener=opener)
    out, notifier = RecordingOutput(), Pings()
    loop = TrackingLoop(tracker=ScriptedTracker([]), grabber=QueueGrabber([frame640()] * frames), outputs=[out],
                        config=load_config({}), track_log=track_log, notifier=notifier,
                        initial_target=TargetRequest(roi="center:40x40"))
    try:
        while loop.step():
            pass
        assert disk["f"].entered.wait(10)            # the track log's thread is stuck in a write (10 s: a hang guard)
        assert loop.stats.frames == frames and len(out.updates) == frames - 1
        assert notifier.watchdog_pings == frames
        dropped = loop.counters()["telemetry"]["dropped"]
        assert frames - TRACK_LOG_QUEUE - 1 <= dropped <= frames - TRACK_LOG_QUEUE
        assert len(records.lines(logging.WARNING, "track log is behind")) == 1
    finally:
        disk["f"].release.set()
    loop.shutdown()
    assert not loop.telemetry_stuck


def test_copytruncate_then_a_full_disk_leaves_no_nul_bytes(tmp_path):
    """logrotate's copytruncate empties the file under the open descriptor; a line that then only
    partly lands is cut back to the size the file has now, not the (larger) size counted before."""
    path = tmp_path / "track.jsonl"
    disks = []

    class Disk(FillingDisk):
        def size(self):   # as the kernel: an O_APPEND write lands at the end of the file as it is now
            return os.fstat(self.f.fileno()).st_size

    def opener(p):
        disks.append(Disk(p, capacity=10**6))
        return disks[-1]

    log = TrackLog(str(path), opener=opener)
    for i in range(50):
        log.write({"frame": i, "pad": "x" * 40})
    os.truncate(path, 0)                             # copytruncate
    disks[0].capacity = 150                          # and then the disk fills up
    for i in range(50, 60):
        log.write({"frame": i, "pad": "x" * 40})
    log.close()
    data = path.read_bytes()
    assert b"\0" not in data
    assert [r["frame"] for r in whole_json_lines(path)] == [50, 51]
    assert log.dropped == 8


def test_config_check_refuses_a_fifo_as_track_log_or_recording(tmp_path):
    from edge.runtime.preflight import check_telemetry_paths

    fifo = tmp_path / "named.avi"
    os.mkfifo(fifo)
    for tel in ({"track_log": str(fifo)}, {"record": str(fifo)}):
        with pytest.raises(ConfigError, match="FIFO, not a regular file"):   # the schema, or preflight
            check_telemetry_paths(load_config({"telemetry": tel}).telemetry)


# -- target requests: the newest wins, one init per tracked frame -------------------------------------

def test_a_flood_of_selects_costs_one_init_and_counts_the_rest():
    tracker = ScriptedTracker([])
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 3), outputs=[RecordingOutput()],
                        config=load_config({}))
    for i in range(1000):
        loop.request(TargetRequest(box=(10 + i % 100, 100, 40, 40), source="web"))
    assert loop.step()
    assert tracker.inits == [(10 + 999 % 100, 100.0, 40.0, 40.0)]     # the newest, once
    assert loop.superseded == 999 and loop.counters()["requests"] == {"superseded": 999}
    loop.shutdown()


def test_a_new_target_every_frame_still_leaves_every_other_frame_tracked():
    tracker = ScriptedTracker([])
    out = RecordingOutput()
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 20), outputs=[out],
                        config=load_config({}))
    for i in range(20):
        loop.request(TargetRequest(box=(100 + i, 100, 40, 40), source="web"))
        assert loop.step()
    loop.shutdown()
    assert len(tracker.inits) == 10 and len(out.updates) == 10    # init, track, init, track, ...
    assert loop.stats.frames == 20


def test_a_stop_is_never_held_back_by_the_init_limit():
    tracker = ScriptedTracker([])
    out = RecordingOutput()
    loop = TrackingLoop(tracker=tracker, grabber=QueueGrabber([frame640()] * 3), outputs=[out],
                        config=load_config({}), initial_target=TargetRequest(roi="center:40x40"))
    assert loop.step() and loop.state == "TRACKING"
    loop.request(TargetRequest(source="web"))        # Stop, on the very next frame
    stops = out.stops
    assert loop.step()
    assert loop.state == "IDLE" and out.stops == stops + 1
    loop.shutdown()


def test_sixteen_local_clients_flooding_select_do_not_stop_the_frames(tmp_path):
    """16 clients POST /api/select as fast as they can on 127.0.0.1: frames, commands and the
    track log go on, and the tracker is initialised at most every other frame."""
    from edge.web.server import ConsoleServer
    from support.loop_fakes import FollowingTracker, LiveGrabber

    cfg = load_config({"telemetry": {"track_log": str(tmp_path / "track.jsonl")}})
    tracker, out = FollowingTracker(), RecordingOutput()
    loop = TrackingLoop(tracker=tracker, grabber=LiveGrabber(), outputs=[out], config=cfg,
                        track_log=TrackLog(str(tmp_path / "track.jsonl")))
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    server = ConsoleServer(loop, None, cfg, bind="127.0.0.1", port=0).start()
    host, port = server.httpd.server_address[:2]
    deadline = time.monotonic() + 10
    while loop.camera_model is None and time.monotonic() < deadline:
        time.sleep(0.01)
    body = json.dumps({"box": [100, 80, 40, 40]}).encode()
    sent = []

    def client():
        for _ in range(40):
            req = urllib.request.Request(f"http://{host}:{port}/api/select", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    sent.append(resp.status)
            except OSError:
                pass

    frames_before = loop.stats.frames
    clients = [threading.Thread(target=client) for _ in range(16)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(60)
    frames = loop.stats.frames - frames_before
    server.close()
    stop.set()
    thread.join(5)
    assert sent.count(200) > 100
    assert frames > 0 and len(out.updates) > 0
    assert len(tracker.inits) <= loop.stats.frames // 2 + 1
    assert len(tracker.inits) + loop.superseded <= sent.count(200) + 1
    lines = whole_json_lines(tmp_path / "track.jsonl")
    assert len(lines) == loop.stats.frames


# -- a serial device that stops reading: a pty nobody reads -------------------------------------------

def pelco_frames(data: bytes) -> list[bytes]:
    """Pelco-D frames found in ``data`` (sync byte, checksum), as a receiver resyncs."""
    found, i = [], 0
    while i + 7 <= len(data):
        frame = data[i:i + 7]
        if frame[0] == 0xFF and sum(frame[1:6]) % 256 == frame[6]:
            found.append(frame)
            i += 7
        else:
            i += 1
    return found


def test_a_serial_device_that_stops_reading_never_makes_a_write_wait(tmp_path, records):
    """Writes to a full port return at once, unsent (counted), with no reopen per write; a port
    that took nothing for STUCK_S is reported once and reopened; when the device reads again the
    newest command is what it gets last."""
    pytest.importorskip("serial")
    from edge.gimbal.protocols import pelco_d
    from edge.outputs.pelco import PelcoDConfig, PelcoDOutput
    from edge.outputs.transport import STUCK_S, SerialLink
    from support.gimbal_frames import update
    from support.seams import Pty

    pty, clock = Pty(tmp_path), [0.0]
    link = SerialLink(pty.link, 9600, clock=lambda: clock[0])
    out = PelcoDOutput(PelcoDConfig(port=pty.link, address=1), link=link)
    sent = 0
    while link.unsent == 0 and sent < 100_000:       # nobody reads the master: its buffer fills up
        out.send(update(yaw=float(sent % 50 + 1), pitch=0.0))
        sent += 1
    assert link.unsent == 1 and sent < 100_000
    for i in range(200):                             # frames keep coming; the clock stands still
        out.send(update(yaw=-float(i % 50 + 1), pitch=0.0))
    assert link.reconnects == 0 and link.stalls == 0 and link.unsent == 201
    assert link.write_errors == 0
    clock[0] += STUCK_S                              # a second of a port that takes nothing
    out.send(update(yaw=-5.0, pitch=0.0))
    assert link.stalls == 1
    assert len(records.lines(logging.WARNING, "took no data")) == 1
    assert out.counters()["stalls"] == 1
    pty.read(0.3)                                    # the device reads again
    out.stop()                                       # the newest command: a stop
    got = pelco_frames(pty.read(0.3))
    assert got[-1] == pelco_d.stop(1), got[-3:]
    assert link.reconnects == 1
    out.close()
    pty.close()


# -- NanoTrack folders: files checked before they are read, outputs at load ---------------------------

def nanotrack_folder(tmp_path, head=None, backbone=None):
    """A NanoTrack V2 folder: the shared backbone (or ``backbone``: bytes, or a callable making the
    file) and the shared head (or ``head``: an onnx ModelProto)."""
    from conftest import shared_path
    from edge.trackers.nanotrack_files import find_files

    real_backbone, real_head = find_files(shared_path("models", "opencv"))
    folder = tmp_path / "nt"
    folder.mkdir()
    if callable(backbone):
        backbone(str(folder / "nanotrack_backbone.onnx"))
    else:
        (folder / "nanotrack_backbone.onnx").write_bytes(backbone or open(real_backbone, "rb").read())
    if head is None:
        (folder / "nanotrack_head.onnx").write_bytes(open(real_head, "rb").read())
    else:
        import onnx

        onnx.save(head, str(folder / "nanotrack_head.onnx"))
    return str(folder)


def fake_head(score_channels=2, box_channels=4, score_grid=16, box_grid=16):
    """A head with NanoTrack V2's inputs whose outputs are slices of the search features."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def out(name, channels, grid):
        starts = helper.make_tensor(f"{name}_s", TensorProto.INT64, [3], [0, 0, 0])
        ends = helper.make_tensor(f"{name}_e", TensorProto.INT64, [3], [channels, grid, grid])
        axes = helper.make_tensor(f"{name}_a", TensorProto.INT64, [3], [1, 2, 3])
        node = helper.make_node("Slice", ["input2", f"{name}_s", f"{name}_e", f"{name}_a"], [name])
        info = helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, grid, grid])
        return node, [starts, ends, axes], info

    n1, i1, o1 = out("output1", score_channels, score_grid)
    n2, i2, o2 = out("output2", box_channels, box_grid)
    graph = helper.make_graph([n1, n2], "head",
                              [helper.make_tensor_value_info("input1", TensorProto.FLOAT, [1, 48, 8, 8]),
                               helper.make_tensor_value_info("input2", TensorProto.FLOAT, [1, 48, 16, 16])],
                              [o1, o2], initializer=i1 + i2)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("outputs, why", [
    ({"score_channels": 3}, "3-channel score map"),
    ({"score_channels": 4, "box_channels": 2}, "swapped"),
    ({"score_grid": 15}, "15x15 score grid and a 16x16 box grid"),
])
def test_a_nanotrack_head_with_the_wrong_outputs_is_one_config_line(tmp_path, outputs, why):
    from edge.trackers.nanotrack_model import NanoTrackModel

    folder = nanotrack_folder(tmp_path, head=fake_head(**outputs))
    with pytest.raises(ConfigError, match=why) as err:
        NanoTrackModel(folder)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "zeros_200mb", "zeros_small"])
def test_a_nanotrack_file_that_is_no_model_file_is_refused_before_it_is_read(tmp_path, kind):
    from edge.trackers.nanotrack_model import NanoTrackModel

    def make(path):
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev_zero":
            os.symlink("/dev/zero", path)
        elif kind == "zeros_200mb":
            with open(path, "wb") as f:
                f.truncate(200 * 2**20)              # sparse: no disk, 200 MB of zeros to read
        else:
            with open(path, "wb") as f:
                f.write(bytes(4096))

    folder = nanotrack_folder(tmp_path, backbone=make)
    why = {"fifo": "not a regular file", "dev_zero": "not a regular file", "zeros_200mb": "200 MB",
           "zeros_small": "not an ONNX file"}[kind]
    got = {}

    def load():
        try:
            NanoTrackModel(folder)
        except ConfigError as exc:
            got["error"] = str(exc)

    assert run_in_thread(load, 30.0), "reading the file hung"
    assert why in got["error"] and "\n" not in got["error"], got


def test_an_error_without_a_message_still_makes_one_line():
    from edge.errors import first_line

    assert first_line(MemoryError()) == "MemoryError"
    assert first_line(ValueError("two\nlines")) == "two"


def test_out_of_memory_is_one_line_from_the_command_line(monkeypatch, capsys):
    from edge.cli import main as cli

    def boom(self, argv):
        raise MemoryError

    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": boom})())
    monkeypatch.setattr(cli, "_check_top_level_options", lambda parser, argv: None)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err


# -- folder sources: a FIFO among the frames, a truncated JPEG ---------------------------------------

def test_a_fifo_as_the_first_frame_of_a_folder_is_skipped_not_waited_on(tmp_path, records):
    import cv2
    import numpy as np

    from edge.camera import open_source
    from edge.runtime.preflight import first_frame_size

    os.mkfifo(tmp_path / "0000.jpg")
    cv2.imwrite(str(tmp_path / "0001.jpg"), np.full((48, 64, 3), 128, np.uint8))
    got = {}
    assert run_in_thread(lambda: got.setdefault("size", first_frame_size(lambda: open_source(str(tmp_path)),
                                                                         str(tmp_path))), 30.0)
    assert got["size"] == (64, 48)
    assert records.lines(logging.WARNING, "not a regular file")


def test_a_truncated_jpeg_in_a_folder_is_our_one_line_not_libjpegs(tmp_path, capfd, records):
    import cv2
    import numpy as np

    from edge.camera import open_source

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "0000.jpg"), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    whole = (tmp_path / "0000.jpg").read_bytes()
    (tmp_path / "0001.jpg").write_bytes(whole[:len(whole) // 2])   # cut short while it was copied
    (tmp_path / "0002.txt.jpg").write_bytes(b"not an image")
    capfd.readouterr()
    frames = list(open_source(str(tmp_path)))
    err = capfd.readouterr().err
    assert len(frames) == 1
    assert "Premature end" not in err and "findDecoder" not in err and "WARN" not in err, err
    assert records.lines(logging.WARNING, "truncated JPEG")


def test_a_head_onnxruntime_cannot_run_is_our_one_line_without_its_coloured_one(tmp_path, capfd):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from edge.trackers.nanotrack_model import NanoTrackModel

    # Declared shapes that fit, but the features the backbone gives are 16x16: Add fails when run.
    spare = helper.make_tensor("k", TensorProto.FLOAT, [1, 48, 8, 8], [0.0] * (48 * 64))
    nodes = [helper.make_node("Add", ["input2", "k"], ["output1"]),
             helper.make_node("Identity", ["input1"], ["output2"])]
    inputs = [helper.make_tensor_value_info("input1", TensorProto.FLOAT, [1, 48, 8, 8]),
              helper.make_tensor_value_info("input2", TensorProto.FLOAT, [1, 48, "h", "w"])]
    graph = helper.make_graph(nodes, "head", inputs,
                              [helper.make_tensor_value_info("output1", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("output2", TensorProto.FLOAT, None)], initializer=[spare])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder = nanotrack_folder(tmp_path, head=model)
    capfd.readouterr()
    with pytest.raises(ConfigError, match="not a NanoTrack head") as err:
        NanoTrackModel(folder)
    assert "\n" not in str(err.value)
    assert "onnxruntime" not in capfd.readouterr().err


# -- a looped file that ends unexpectedly ------------------------------------------------------------

def test_a_looped_file_that_no_longer_opens_is_a_failure_with_its_reason():
    from edge.camera.base import Frame
    from edge.camera.grabber import LatestFrameGrabber
    from edge.errors import SourceError

    opened = []

    class Clip:
        def __iter__(self):
            for i in range(3):
                yield Frame(frame640(), time.monotonic_ns(), i)

        def close(self):
            pass

    def opener():
        opened.append(1)
        if len(opened) > 2:
            raise SourceError("cannot read frames from clip.mp4")   # truncated mid-run: no moov atom
        return Clip()

    grabber = LatestFrameGrabber(opener, reconnect=False, replay=True).start()
    deadline = time.monotonic() + 20
    while not grabber.finished and time.monotonic() < deadline:
        grabber.get(timeout=0.05)
    grabber.stop()
    assert grabber.finished and len(opened) == 3
    assert grabber.failure == "cannot read frames from clip.mp4"


def test_run_on_a_looped_mp4_truncated_mid_run_exits_non_zero_with_a_reason(tmp_path, tiny_model_path):
    from support.media import write_video
    from support.processes import Child, edge_track_cmd

    video = tmp_path / "clip.mp4"
    gt = write_video(str(video), n=30, fourcc="mp4v")
    log_path = tmp_path / "track.jsonl"
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": str(video), "loop_file": True},
                               "model": {"path": tiny_model_path},
                               "tracking": {"init": ",".join(f"{v:g}" for v in gt[0])},
                               "telemetry": {"track_log": str(log_path)}}))
    with Child(edge_track_cmd() + ["run", "--config", str(cfg)]) as child:
        child.wait_until(lambda: log_path.exists() and log_path.stat().st_size > 0)
        os.truncate(video, video.stat().st_size // 2)    # cut short mid-run: the next pass cannot open it
        assert child.finish(guard_s=60), child.err
    err = child.err
    assert child.returncode != 0, err
    assert err.splitlines()[-1].startswith("edge-track: error: camera.source"), err
    assert "ended unexpectedly" in err.splitlines()[-1] and "Traceback" not in err, err


# -- a second instance, and what only `run` used to refuse ------------------------------------------

def test_a_second_holder_of_a_device_is_refused_and_holds_nothing(tmp_path):
    from edge.runtime.instance_lock import hold_device_locks

    cfg = load_config({"outputs": [{"type": "pelco_d", "port": "/dev/ttyUSB7"}, {"type": "log"}]})
    other = load_config({"outputs": [{"type": "simplebgc", "port": "/dev/ttyUSB8"},
                                     {"type": "pelco_d", "port": "/dev/ttyUSB7"}],
                         "camera": {"source": "1"}})   # another camera: only the Pelco head is shared
    first = hold_device_locks(cfg, str(tmp_path))
    with pytest.raises(ConfigError, match=r"outputs\[1\] \(pelco_d\): /dev/ttyUSB7 is in use by another "
                                          rf"edge-track \(pid {os.getpid()}\)"):
        hold_device_locks(other, str(tmp_path))
    alone = hold_device_locks(load_config({"outputs": [{"type": "simplebgc", "port": "/dev/ttyUSB8"}],
                                           "camera": {"source": "1"}}),
                              str(tmp_path))          # the refused one let go of what it had taken
    first.release()
    again = hold_device_locks(cfg, str(tmp_path))      # released: free again
    again.release()
    alone.release()


def test_a_second_run_on_the_same_devices_is_refused_before_it_sends_anything(tmp_path, tiny_model_path):
    """The first instance drives a SimpleBGC head; a second `run` on the same config (its web port
    taken too), and one on the same head without the console, are refused with one line and exit 2
    without one byte to the head: no CMD_CONTROL_CONFIG, no zero speed, no release."""
    import subprocess

    from edge.gimbal.protocols import simplebgc
    from support.media import write_video
    from support.processes import Child, edge_track_cmd
    from support.seams import Pty

    bgc = Pty(tmp_path, "bgc")
    video = str(tmp_path / "clip.avi")
    gt = write_video(video)
    log_path = tmp_path / "track.jsonl"
    base = {"camera": {"source": video, "loop_file": True}, "model": {"path": tiny_model_path},
            "tracking": {"init": ",".join(f"{v:g}" for v in gt[0])},
            "outputs": [{"type": "simplebgc", "port": bgc.link}]}
    same = tmp_path / "device.yaml"
    same.write_text(json.dumps({**base, "telemetry": {"track_log": str(log_path)},
                                "web": {"enabled": True, "port": free_tcp_port()}}))
    headless = tmp_path / "headless.yaml"
    headless.write_text(json.dumps(base))
    env = dict(os.environ, EDGE_TRACK_LOCK_DIR=str(tmp_path))
    received = [b""]

    def read():
        received[0] += bgc.read(0.05)

    with Child(edge_track_cmd() + ["run", "--config", str(same)], env=env) as first:
        first.wait_until(lambda: log_path.exists() and log_path.stat().st_size > 0, step=read)
        for config in (same, headless):
            second = subprocess.run(edge_track_cmd() + ["run", "--config", str(config)], capture_output=True,
                                    text=True, env=env, timeout=120)
            assert second.returncode == 2, second.stderr
            last = second.stderr.splitlines()[-1]
            assert last.startswith("edge-track: error: outputs[0] (simplebgc)") and "in use by another" in last, last
        data = received[0] + bgc.read(0.3)
        commands = [cmd for cmd, _ in sbgc_split(data)]
        assert commands.count(simplebgc.CMD_CONTROL_CONFIG) == 1      # the first instance's, once
        assert simplebgc.CMD_CONTROL in commands
        assert all(cmd in (simplebgc.CMD_CONTROL_CONFIG, simplebgc.CMD_CONTROL) for cmd in commands), commands
        first.stop(signal.SIGTERM, guard_s=30)
    bgc.close()
    assert first.returncode == 143


def test_config_check_refuses_what_run_refuses_about_the_console(tmp_path):
    from edge.runtime.preflight import check_web

    with pytest.raises(ConfigError, match="web.bind 'not an address': not an IP address or host name"):
        check_web(load_config({"web": {"enabled": True, "bind": "not an address"}}).web)
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "elsewhere").write_text("x" * 40)
    os.symlink(tmp_path / "elsewhere", state / "web-token")
    web = load_config({"web": {"enabled": True, "bind": "0.0.0.0", "state_dir": str(state)}}).web
    with pytest.raises(ConfigError, match="is a symbolic link"):
        check_web(web)
    check_web(load_config({"web": {"enabled": True, "bind": "127.0.0.1", "state_dir": str(state)}}).web)
    os.remove(state / "web-token")
    check_web(web)                                    # nothing there yet: run writes a new one
    assert not (state / "web-token").exists()          # and the check made nothing


# -- a signal in the first moments of a process ---------------------------------------------------------

SIGNAL_DURING_IMPORTS = r"""
import os, resource, signal, sys
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # SIGQUIT's default action would dump core
class SignalOnImport:
    # a real signal to this process at a fixed point: the first import of numpy, which the command
    # line makes while it loads (0.3-0.5 s on a Pi), before any command has begun
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        return None
sys.meta_path.insert(0, SignalOnImport())
from edge.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGQUIT", "SIGHUP"])
@pytest.mark.parametrize("command", ["run", "config show"])
def test_a_signal_before_the_command_begins_exits_128_plus_n_not_by_its_default_action(tmp_path, signame,
                                                                                     command):
    import signal
    import subprocess
    import sys

    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"outputs": [{"type": "log"}]}))
    args = ["run", "--config", str(cfg)] if command == "run" else ["config", "show"]
    proc = subprocess.run([sys.executable, "-c", SIGNAL_DURING_IMPORTS, signame, *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    sig = getattr(signal, signame)
    assert proc.returncode == 128 + sig, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "READY" not in proc.stdout
    assert proc.stdout == "" or command == "run", proc.stdout          # config show never began


# -- the pwm output on mock pins, as `run` builds it ---------------------------------------------------

def test_pwm_with_pin_factory_mock_drives_its_servos_as_run_opens_it():
    pytest.importorskip("gpiozero")
    from edge.config import ControlConfig
    from edge.outputs import open_output
    from edge.outputs.pwm import PwmConfig
    from support.gimbal_frames import update

    out = open_output(PwmConfig(pin_factory="mock", pan_pin=12, tilt_pin=13), ControlConfig())
    try:
        for i in range(5):
            out.send(update(seq=i, yaw=30.0, pitch=0.0))
        assert out.pan.pwm_device.pin.frequency == 50 and out.pan.pwm_device.pin.state > 0   # a 50 Hz servo pulse
    finally:
        out.close()


# -- files written for a user: whole or not at all --------------------------------------------------

WRITE_UNDER_ULIMIT = r"""
import resource, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))   # `ulimit -f`: the write crosses it (EFBIG)
from calib.intrinsics import IntrinsicsResult, write_result
from edge.errors import EdgeTrackError
result = IntrinsicsResult(K=np.eye(3) * 500.0, dist=np.zeros(5), image_size=(640, 480), model="pinhole", rms_px=0.3)
try:
    write_result(result, sys.argv[1])
except EdgeTrackError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


def test_a_calibration_write_that_fails_keeps_the_old_file_and_leaves_no_part_file(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "camera.yaml"
    good = "K: [[500, 0, 320], [0, 500, 240], [0, 0, 1]]\nimage_size: [640, 480]\n"
    path.write_text(good)
    proc = subprocess.run([sys.executable, "-c", WRITE_UNDER_ULIMIT, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr and "unchanged" in proc.stderr
    assert path.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camera.yaml"]


def test_every_user_file_is_written_through_the_one_atomic_helper(tmp_path, monkeypatch):
    """A failure between the write and the rename (fsync refused: a full disk, an I/O error) leaves
    the profile and the token as they were, and no temporary file."""
    from calib.profile import update_profile
    from edge.io.atomic_file import atomic_paths, write_atomic
    from edge.web.token_file import load_or_create_token

    profile = tmp_path / "gimbal.yaml"
    update_profile(str(profile), {"latency_s": 0.05}, "latency")
    state = tmp_path / "state"
    token = load_or_create_token(str(state))
    before = profile.read_text(), (state / "web-token").read_text()

    def refused(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", refused)
    with pytest.raises(ConfigError, match="unchanged"):
        update_profile(str(profile), {"latency_s": 0.09}, "latency")
    (state / "web-token").write_text("short\n")          # too short: replaced by a new one, which fails
    with pytest.raises(ConfigError, match="web token file"):
        load_or_create_token(str(state))
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "model.onnx"), b"\x08\x07")
    with pytest.raises(OSError), atomic_paths([str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx")]) as tmp:
        for p in tmp.values():
            open(p, "wb").write(b"x")
    monkeypatch.undo()
    assert profile.read_text() == before[0] and token
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gimbal.yaml", "state"]
    assert sorted(p.name for p in state.iterdir()) == ["web-token"]


class SaturatedPort:
    """A UART whose transmit queue holds ``room`` bytes and drains a few bytes each time it is asked
    how much waits; whatever is queued at close goes out on the wire (a tty's close drains it)."""

    def __init__(self, room=64):
        self.room, self.queue, self.wire = room, bytearray(), bytearray()

    def write(self, data):
        taken = min(len(data), self.room - len(self.queue))
        self.queue += data[:taken]
        return taken

    def reset_output_buffer(self):
        self.queue.clear()

    @property
    def out_waiting(self):
        self.wire += self.queue[:4]
        del self.queue[:4]
        return len(self.queue)

    def read(self, size=1):
        return b""

    def close(self):
        self.wire += self.queue
        self.queue.clear()


def test_the_last_stop_reaches_a_serial_head_whose_port_was_full_at_exit(monkeypatch):
    """Closing an output whose port is saturated (a speed cut in two in its queue, no room left):
    the stale speeds are discarded and the stop waits for room, so the head's last frame is the stop,
    not a speed (Pelco-D heads latch speeds: a lost stop keeps them panning after exit)."""
    import types

    pytest.importorskip("serial")
    from edge.gimbal.protocols import pelco_d
    from edge.outputs.pelco import PelcoDConfig, PelcoDOutput
    from edge.outputs.transport import SerialLink
    from support.gimbal_frames import update

    port = SaturatedPort()
    link = SerialLink("/dev/ttyFAKE", 2400)
    link._serial_module = types.SimpleNamespace(Serial=lambda *a, **k: port, SerialException=OSError)
    link._open()
    out = PelcoDOutput(PelcoDConfig(port="/dev/ttyFAKE", address=1), link=link)
    for i in range(40):                              # faster than the baud rate: the queue is full
        out.send(update(yaw=float(i % 50 + 1), pitch=0.0))
    assert link.unsent > 0
    out.close()
    frames = pelco_frames(bytes(port.wire))
    assert frames and frames[-1] == pelco_d.stop(1), frames[-3:]
