"""``calibrate gimbal|latency --config`` drive the real head: every stop signal stops it (a Pelco-D
head on a pty keeps its last speed otherwise) and exits 128 + n, writing no profile."""

import json
import signal
import subprocess
import time

import pytest
from test_runtime import edge_track_cmd, write_video

from edge.gimbal.protocols import pelco_d
from test_outputs import Pty


def frames(data):
    return [data[i:i + 7] for i in range(0, len(data), 7)]


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
    proc = subprocess.Popen(edge_track_cmd() + ["calibrate", step, "--config", str(cfg), "--profile", str(profile),
                                                "--init", ",".join(f"{v:g}" for v in gt[0])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    data = b""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(f != pelco_d.stop(1) for f in frames(data)):
            assert proc.poll() is None, proc.communicate()
            data += pelco.read(0.01)
        assert any(f != pelco_d.stop(1) for f in frames(data)), data   # the head is turning now
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    data += pelco.read(0.3)
    pelco.close()
    assert frames(data)[-1] == pelco_d.stop(1), (frames(data)[-3:], err)
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert not profile.exists()
    if sig == signal.SIGINT:
        assert err.splitlines()[-1] == "edge-track: interrupted", err
