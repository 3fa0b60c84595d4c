"""``calibrate gimbal|latency --config`` drive the real head: every stop signal stops it (a Pelco-D
head on a pty keeps its last speed otherwise) and exits 128 + n, writing no profile."""

import json
import signal

import pytest

from edge.gimbal.protocols import pelco_d
from support.gimbal_frames import frames7
from support.media import write_video
from support.processes import Child, edge_track_cmd
from support.seams import Pty


@pytest.mark.parametrize("step,signame", [("gimbal", "SIGTERM"), ("gimbal", "SIGHUP"), ("gimbal", "SIGINT"),
                                          ("latency", "SIGTERM"), ("gimbal", "SIGQUIT")])
def test_a_stop_signal_mid_calibration_stops_the_head_and_exits_128_plus_n(tmp_path, tiny_model_path, step, signame):
    sig = getattr(signal, signame)
    pelco = Pty(tmp_path, "pelco")
    video = str(tmp_path / "clip.avi")
    gt = write_video(video, n=120)
    cfg = tmp_path / "device.yaml"
    cfg.write_text(json.dumps({
        "camera": {"source": video, "loop_file": True}, "model": {"path": tiny_model_path},
        "tracking": {"lost_score": 0.0},       # the target always counts as tracked: the step moves the head
        "outputs": [{"type": "pelco_d", "port": pelco.link, "address": 1}]}))
    profile = tmp_path / "gimbal.yaml"
    received = [b""]

    def turning():
        return any(f != pelco_d.stop(1) for f in frames7(received[0]))

    def read():
        received[0] += pelco.read(0.01)

    with Child(edge_track_cmd() + ["calibrate", step, "--config", str(cfg), "--profile", str(profile),
                                   "--init", ",".join(f"{v:g}" for v in gt[0])]) as child:
        assert child.wait_until(turning, step=read), received[0]   # the head is turning now
        assert child.stop(sig, guard_s=30), child.err
    data = received[0] + pelco.read(0.3)
    pelco.close()
    err = child.err
    assert frames7(data)[-1] == pelco_d.stop(1), (frames7(data)[-3:], err)
    assert child.returncode == 128 + sig, (child.returncode, err)
    assert "Traceback" not in err, err
    assert not profile.exists()
    if sig == signal.SIGINT:
        assert err.splitlines()[-1] == "edge-track: interrupted", err
