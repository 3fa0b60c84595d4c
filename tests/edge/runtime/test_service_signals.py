"""Signals to the service (#24, #25): every terminating signal stops every output before the process
exits with 128 + the signal's number, and a signal during start-up never reaches READY."""

import json
import signal
import struct
import sys

import pytest

from edge.gimbal.protocols import boxproto, pelco_d, simplebgc
from support.media import write_video
from support.paths import REPO
from support.processes import Child, edge_track_cmd
from support.seams import Pty, free_udp_port
from support.systemd import NotifySocket

mavutil = pytest.importorskip("pymavlink.mavutil")


class Heads:
    """Every kind of moving output on its real seam: three serial heads on pty pairs and a MAVLink
    gimbal on UDP loopback, with what each was sent."""

    def __init__(self, tmp_path):
        from edge.outputs.mavlink import DIALECT

        self.box, self.bgc, self.pelco = Pty(tmp_path, "box"), Pty(tmp_path, "bgc"), Pty(tmp_path, "pelco")
        self.udp = free_udp_port()
        self.ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{self.udp}", source_system=255,
                                                 source_component=190, dialect=DIALECT)
        self.data = {"box": b"", "bgc": b"", "pelco": b""}
        self.rates = []          # (yaw_rate, pitch_rate) of each GIMBAL_MANAGER_SET_PITCHYAW

    def outputs(self):
        return [{"type": "serial_box", "port": self.box.link}, {"type": "simplebgc", "port": self.bgc.link},
                {"type": "pelco_d", "port": self.pelco.link, "address": 1},
                {"type": "mavlink", "port": f"udpout:127.0.0.1:{self.udp}"}]

    def drain(self, wait=0.05):
        for name in self.data:
            self.data[name] += getattr(self, name).read(wait)
        while True:
            msg = self.ground.recv_match(type="GIMBAL_MANAGER_SET_PITCHYAW", blocking=False)
            if msg is None:
                break
            self.rates.append((msg.yaw_rate, msg.pitch_rate))

    def box_states(self):
        return [m.state for m in boxproto.BoxParser().feed(self.data["box"])]

    def bgc_speeds(self):
        """(pitch, yaw) speeds of each speed-mode CMD_CONTROL frame; None for a release frame."""
        speeds, data = [], self.data["bgc"]
        while len(data) >= 6 and len(data) >= 6 + data[2]:
            size = 6 + data[2]
            cmd, payload = simplebgc.parse_v2(data[:size])
            data = data[size:]
            if cmd == simplebgc.CMD_CONTROL_CONFIG:   # the control timeout, on each port opened
                continue
            assert cmd == simplebgc.CMD_CONTROL
            if payload[0] == simplebgc.MODE_SPEED:
                _, _, pitch, _, yaw, _ = struct.unpack_from("<hhhhhh", payload, 3)
                speeds.append((pitch, yaw))
            else:
                speeds.append(None)
        return speeds

    def pelco_frames(self):
        data = self.data["pelco"]
        return [data[i:i + 7] for i in range(0, len(data), 7)]

    def moved(self):
        """Which heads were sent a moving command."""
        return {"box": "TRACKING" in self.box_states(),
                "bgc": any(s and s != (0, 0) for s in self.bgc_speeds()),
                "pelco": any(f != pelco_d.stop(1) for f in self.pelco_frames()),
                "mavlink": any(r != (0.0, 0.0) for r in self.rates)}

    def close(self):
        for pty in (self.box, self.bgc, self.pelco):
            pty.close()
        self.ground.close()


def device_yaml(tmp_path, heads, **extra):
    video = str(tmp_path / "clip.avi")
    gt = write_video(video)
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({
        "camera": {"source": video, "loop_file": True},
        "tracking": {"init": ",".join(f"{v:g}" for v in gt[0]), "lost_score": 0.0},   # never LOST: it moves
        "outputs": heads.outputs(), **extra}))
    return cfg


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"])
def test_every_terminating_signal_stops_every_output_then_exits_128_plus_n(tmp_path, tiny_model_path, signame):
    sig = getattr(signal, signame)
    heads = Heads(tmp_path)
    cfg = device_yaml(tmp_path, heads, model={"path": tiny_model_path})
    notify = NotifySocket(tmp_path)
    with Child(edge_track_cmd() + ["run", "--config", str(cfg)], env=notify.env) as child:
        # every head was moving when the signal came
        assert child.wait_until(lambda: all(heads.moved().values()), step=heads.drain), heads.moved()
        assert child.stop(sig), child.err
    heads.drain(0.3)
    messages = notify.texts()
    notify.close()
    heads.close()
    err = child.err
    speeds = [s for s in heads.bgc_speeds() if s is not None]
    last = {"box": heads.box_states()[-1], "bgc": speeds[-1], "pelco": heads.pelco_frames()[-1],
            "mavlink": heads.rates[-1]}
    assert last == {"box": "IDLE", "bgc": (0, 0), "pelco": pelco_d.stop(1), "mavlink": (0.0, 0.0)}, err
    assert "STOPPING=1" in messages
    assert child.returncode == 128 + sig, (child.returncode, err)
    assert "Traceback" not in err, err
    if sig == signal.SIGINT:
        assert err.splitlines()[-1] == "edge-track: interrupted", err


def test_the_unit_counts_the_sigterm_exit_as_a_clean_stop():
    # systemctl stop sends SIGTERM; the service exits 143 after stopping the outputs (above). Only
    # that exit is clean: after a HUP or QUIT (or an error) Restart=on-failure starts it again.
    unit = (REPO / "firmware_scripts" / "edge-track.service.in").read_text().splitlines()
    success = [line.split("=", 1)[1].split() for line in unit if line.startswith("SuccessExitStatus=")]
    assert success == [[str(128 + signal.SIGTERM)]], success
    assert "Restart=on-failure" in unit


SLOW_CURSES = """
import sys, time
from importlib.abc import MetaPathFinder

class SlowCurses(MetaPathFinder):
    # A slow disk under `from curses import ascii`, the import pymavlink's mavutil wraps in a bare except.
    def find_spec(self, name, path=None, target=None):
        if name == "curses":
            print("importing curses", file=sys.stderr, flush=True)
            time.sleep(4)
        return None

sys.meta_path.insert(0, SlowCurses())
from edge.cli.main import main
sys.exit(main())
"""


def test_ctrl_c_while_pymavlink_imports_curses_never_reaches_ready(tmp_path, tiny_model_path):
    heads = Heads(tmp_path)
    cfg = device_yaml(tmp_path, heads, model={"path": tiny_model_path})
    notify = NotifySocket(tmp_path)
    with Child([sys.executable, "-c", SLOW_CURSES, "run", "--config", str(cfg)], env=notify.env) as child:
        child.wait_for_line("importing curses")
        child.stop(signal.SIGINT, guard_s=30)    # False: the Ctrl-C was lost, the service ran (killed)
    heads.drain(0.3)
    messages = notify.texts()
    notify.close()
    heads.close()
    err = child.err
    assert not any(m.startswith("READY=1") for m in messages), messages
    assert not any(heads.moved().values()), heads.moved()
    assert child.returncode == 130, err
    assert "Traceback" not in err and err.splitlines()[-1] == "edge-track: interrupted", err


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_the_desk_camera_shorthand_exits_like_run(tmp_path, tiny_model_path, signame):
    # `edge-track --camera SRC` goes through the same service: Ctrl-C is "interrupted", exit 130,
    # as in `track`, `eval` and `sim`.
    sig = getattr(signal, signame)
    video = str(tmp_path / "clip.avi")
    gt = write_video(video, n=120)                   # 4 s at 30 fps: still running when the signal comes
    with Child(edge_track_cmd() + ["--camera", video, "--model", tiny_model_path,
                                   "--init", ",".join(f"{v:g}" for v in gt[0])]) as child:
        child.wait_for_line("ready:")
        assert child.stop(sig), child.err
    err = child.err
    assert child.returncode == 128 + sig, err
    assert "Traceback" not in err, err
    if sig == signal.SIGINT:
        assert err.splitlines()[-1] == "edge-track: interrupted", err


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_signal_while_waiting_for_the_camera_exits_128_plus_n_before_ready(tmp_path, tiny_model_path, signame):
    sig = getattr(signal, signame)
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({"camera": {"source": "/dev/video77", "start_timeout_s": 30.0,
                                          "reconnect_initial_s": 0.2, "reconnect_max_s": 0.2},
                               "model": {"path": tiny_model_path}}))
    notify = NotifySocket(tmp_path)
    with Child(edge_track_cmd() + ["run", "--config", str(cfg)], env=notify.env) as child:
        child.wait_for_line("camera unavailable")   # the model is up, the grabber thread is retrying the camera
        assert child.stop(sig), child.err
    messages = notify.texts()
    notify.close()
    err = child.err
    # not -15 or -1 (nor 134 after a Ctrl-C): handled, the grabber thread stopped first
    assert child.returncode == 128 + sig, err
    assert "Traceback" not in err and not any(m.startswith("READY=1") for m in messages), (err, messages)
    if sig == signal.SIGINT:                          # Ctrl-C is one line: exit 130
        assert err.splitlines()[-1] == "edge-track: interrupted", err
