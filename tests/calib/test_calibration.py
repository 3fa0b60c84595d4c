"""Offline calibration against synthetic truth: rendered chessboards, the simulated head, the tracker."""

import math
import os

import cv2
import numpy as np
import pytest
import yaml

from calib.gimbal import fit_gimbal
from calib.intrinsics import calibrate
from calib.latency import measure_latency
from calib.probe import SimProbe
from edge.cli.main import main
from edge.config import load_config
from edge.control.camera_model import CameraModel
from edge.errors import EdgeTrackError
from edge.sim.run import OracleTracker, run_sim
from edge.sim.world import SimConfig, World
from train.export.input_recorder import record

SIZE = (640, 480)
K_TRUE = np.array([[520.0, 0, 318.0], [0, 515.0, 242.0], [0, 0, 1]])
DIST_TRUE = np.array([-0.25, 0.08, 0.001, -0.0005, 0.0])
COLS, ROWS, SQUARE = 9, 6, 1.0


def render_board(rvec, tvec, blur=0.7, noise=2.0, seed=0):
    """What a camera with K_TRUE / DIST_TRUE sees of a chessboard at pose (rvec, tvec).

    For every (distorted) pixel: undistort to a normalised ray, intersect it with the board plane
    through the pose's homography, and read the board's colour there (rendered 2x, then averaged).
    """
    R, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    H = np.column_stack([R[:, 0], R[:, 1], np.asarray(tvec, np.float64)])     # board (X, Y, 1) -> ray
    Hinv = np.linalg.inv(H)
    w, h = SIZE[0] * 2, SIZE[1] * 2
    u, v = np.meshgrid((np.arange(w) + 0.5) / 2 - 0.5, (np.arange(h) + 0.5) / 2 - 0.5)
    pts = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
    norm = cv2.undistortPoints(pts, K_TRUE, DIST_TRUE).reshape(-1, 2)
    rays = np.column_stack([norm, np.ones(len(norm))])
    board = rays @ Hinv.T
    X, Y = board[:, 0] / board[:, 2], board[:, 1] / board[:, 2]
    inside = (X >= -1) & (X < COLS) & (Y >= -1) & (Y < ROWS) & (board[:, 2] > 0)
    colour = np.where((np.floor(X / SQUARE + 1) + np.floor(Y / SQUARE + 1)) % 2 == 0, 235.0, 25.0)
    img = np.where(inside, colour, 140.0).reshape(h, w)
    img = cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    img = img + np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def poses():
    rng = np.random.default_rng(3)
    out = []
    for i in range(14):
        rvec = np.radians([rng.uniform(-30, 30), rng.uniform(-30, 30), rng.uniform(-15, 15)])
        tvec = [rng.uniform(-4.5, -2.0), rng.uniform(-3.5, -1.5), rng.uniform(11, 16)]
        out.append((rvec, tvec))
    return out


@pytest.fixture(scope="module")
def views():
    return [(f"v{i:02d}.png", render_board(r, t, seed=i)) for i, (r, t) in enumerate(poses())]


def test_intrinsics_recovered_within_one_percent(views):
    blurred = ("blurred.png", cv2.GaussianBlur(views[0][1], (0, 0), 6))
    duplicate = ("dup.png", views[1][1].copy())
    result = calibrate(views + [blurred, duplicate], COLS, ROWS, SQUARE)
    K = result.K
    for got, want in ((K[0, 0], 520.0), (K[1, 1], 515.0), (K[0, 2], 318.0), (K[1, 2], 242.0)):
        assert abs(got - want) / want < 0.01, (got, want)
    assert result.rms_px < 0.5 and result.image_size == SIZE
    reasons = {v.name: v.reason for v in result.views if not v.used}
    assert "dup.png" in reasons and "duplicate" in reasons["dup.png"]
    assert "blurred.png" in reasons and ("blurred" in reasons["blurred.png"] or "not found" in reasons["blurred.png"])


def test_too_few_views_writes_nothing(views, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, img in views[:3]:
        cv2.imwrite(str(folder / name), img)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "cam.yaml"
    assert main(["calibrate", "intrinsics", "--images", str(folder), "--board", "9x6", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only 3 usable views" in err and "unreadable" in err
    assert not out.exists()


def test_board_size_that_never_matches(views):
    with pytest.raises(EdgeTrackError, match="only 0 usable views .* board not found"):
        calibrate(views[:9], 7, 7)


def test_written_calibration_drives_pixel_to_angle(views, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, img in views:
        cv2.imwrite(str(folder / name), img)
    out = str(tmp_path / "cam.yaml")
    assert main(["calibrate", "intrinsics", "--images", str(folder), "--board", "9x6", "--output", out]) == 0
    data = yaml.safe_load(open(out))
    assert data["image_size"] == [640, 480]
    assert len(data["per_view_error_px"]) + len(data["rejected"]) == 14 and len(data["per_view_error_px"]) >= 12
    cam = CameraModel.from_calibration_file(out, 640, 480)
    # Round trip: project known angles through the TRUE lens, read them back through the fitted one.
    for yaw, pitch in ((0, 0), (20, 0), (-15, 10), (12, -14)):
        tan_yaw = math.tan(math.radians(yaw))
        d = np.array([tan_yaw, -math.tan(math.radians(pitch)) * math.hypot(1, tan_yaw), 1.0])
        px, _ = cv2.projectPoints(d.reshape(1, 1, 3), np.zeros(3), np.zeros(3), K_TRUE, DIST_TRUE)
        got = cam.angles_deg(*px.ravel())
        assert got == pytest.approx((yaw, pitch), abs=0.15)
    assert main(["calibrate", "pixel-to-angle", "--calibration", out, "--size", "1280x720", "--pixel", "1,1"]) == 2
    assert "is for 640x480, the stream is 1280x720" in capsys.readouterr().err


@pytest.mark.parametrize("signs, gains, roll", [((1, 1), (1.0, 1.0), 0.0), ((-1, 1), (1.25, 0.8), 6.0),
                                                 ((1, -1), (0.6, 1.5), -10.0)])
def test_gimbal_fit_recovers_the_simulated_head(signs, gains, roll):
    world = World(SimConfig(path="still", yaw_sign=signs[0], pitch_sign=signs[1], yaw_gain=gains[0],
                            pitch_gain=gains[1], roll_offset_deg=roll))
    fit = fit_gimbal(SimProbe(world, OracleTracker(world)))
    assert (fit.invert_pan, fit.invert_tilt) == (signs[0] < 0, signs[1] < 0)
    assert fit.rate_gain_pan == pytest.approx(gains[0], rel=0.02)
    assert fit.rate_gain_tilt == pytest.approx(gains[1], rel=0.02)
    assert fit.roll_offset_deg == pytest.approx(roll, abs=0.5)


def test_the_fitted_profile_makes_a_mis_mounted_head_track(tmp_path):
    head = dict(yaw_sign=-1, yaw_gain=1.3, pitch_gain=0.7, roll_offset_deg=8.0)
    world = World(SimConfig(path="still", **head))
    fit = fit_gimbal(SimProbe(world, OracleTracker(world)))
    profile = tmp_path / "gimbal.yaml"
    profile.write_text(yaml.safe_dump({"control": fit.profile()}))
    sim = SimConfig(path="lissajous", amplitude_deg=15.0, **head)
    naive = run_sim(sim, load_config({}), lambda w: OracleTracker(w), seconds=8.0)
    tuned = run_sim(sim, load_config({"control": {"profile": str(profile)}}), lambda w: OracleTracker(w), seconds=8.0)
    assert tuned.mean_error_deg < 1.5 and tuned.lost_frames == 0
    assert naive.mean_error_deg > 3 * tuned.mean_error_deg


@pytest.mark.parametrize("delay", [0.05, 0.2])
def test_latency_within_one_frame(delay):
    world = World(SimConfig(path="still", delay_s=delay))
    result = measure_latency(SimProbe(world, OracleTracker(world)))
    # Motion can only be seen on the first frame after it starts: [delay, delay + one frame].
    assert delay - 0.005 <= result.command_to_motion_s <= delay + 1 / 30 + 0.005
    assert result.capture_to_command_s == 0.0           # virtual time: tracking takes none
    assert result.profile()["latency_s"] == pytest.approx(result.total_s, abs=1e-4)


def test_calibration_commands_chain_in_the_simulator(tmp_path, capsys):
    profile = str(tmp_path / "gimbal.yaml")
    assert main(["calibrate", "gimbal", "--sim", "--sim-signs=1,-1", "--profile", profile]) == 0
    assert main(["calibrate", "latency", "--sim", "--sim-delay", "0.15", "--profile", profile]) == 0
    assert main(["calibrate", "pid", "--profile", profile]) == 0
    out = capsys.readouterr().out
    control = yaml.safe_load(open(profile))["control"]
    assert control["invert_tilt"] is True and 0.14 < control["latency_s"] < 0.19
    assert "suggested gains" in out
    cfg = load_config({"control": {"profile": profile}})       # the runtime accepts what was written
    assert cfg.control.invert_tilt and cfg.control.latency_s == control["latency_s"]


def test_profile_with_bad_values_is_refused(tmp_path):
    from edge.errors import ConfigError

    profile = tmp_path / "gimbal.yaml"
    profile.write_text("control: {rate_gain_pan: 0}\n")
    with pytest.raises(ConfigError, match="rate_gain_pan: 0.0 is out of range"):
        load_config({"control": {"profile": str(profile)}})


def test_int8_recorder_records_exactly_what_the_tracker_feeds(tiny_model_path):
    from conftest import make_clip_frames
    from edge.engines import open_engine
    from edge.trackers.mixformer import MixFormerTracker

    frames, gt = make_clip_frames(12)

    class Spy:
        def __init__(self, engine):
            self.engine, self.meta, self.name = engine, engine.meta, "spy"
            self.fed = []

        def set_templates(self, t, ot):
            self.t = (t.copy(), ot.copy())
            self.engine.set_templates(t, ot)

        def run(self, search):
            self.fed.append((*self.t, search.copy()))
            return self.engine.run(search)

    spy = Spy(open_engine(tiny_model_path))
    tracker = MixFormerTracker(spy)
    tracker.init(frames[0], gt[0])
    for f in frames[1:]:
        tracker.update(f)
    arrays = record(iter(frames), gt[0], tiny_model_path, every=1)
    assert arrays["search"].shape == (11, 3, 128, 128)
    for i, (t, ot, s) in enumerate(spy.fed):
        assert np.array_equal(arrays["template"][i], t[0]) and np.array_equal(arrays["online_template"][i], ot[0])
        assert np.array_equal(arrays["search"][i], s[0])


def test_int8_command_output_feeds_quantize(tmp_path, tiny_model_path, capsys):
    pytest.importorskip("onnx")
    from conftest import make_clip_frames, write_sequence

    frames, gt = make_clip_frames(20)
    folder = write_sequence(str(tmp_path / "seq"), frames, gt)
    npz = str(tmp_path / "calib.npz")
    assert main(["calibrate", "int8", "--model", tiny_model_path, "--source", os.path.join(folder, "img"),
                 "--every", "2", "--output", npz]) == 0
    assert "wrote" in capsys.readouterr().out
    out = str(tmp_path / "q.onnx")
    assert main(["quantize", "--model", tiny_model_path, "--calib", npz, "--output", out]) == 0
    assert "static-minmax, 10 calibration samples" in capsys.readouterr().out


def render_texture(texture, units_w, units_h, rvec, tvec, blur=0.6, noise=2.0, seed=0):
    """Like render_board, but the board's face is an image spanning units_w x units_h."""
    R, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    Hinv = np.linalg.inv(np.column_stack([R[:, 0], R[:, 1], np.asarray(tvec, np.float64)]))
    w, h = SIZE[0] * 2, SIZE[1] * 2
    u, v = np.meshgrid((np.arange(w) + 0.5) / 2 - 0.5, (np.arange(h) + 0.5) / 2 - 0.5)
    norm = cv2.undistortPoints(np.stack([u.ravel(), v.ravel()], 1).reshape(-1, 1, 2), K_TRUE, DIST_TRUE).reshape(-1, 2)
    board = np.column_stack([norm, np.ones(len(norm))]) @ Hinv.T
    X, Y = board[:, 0] / board[:, 2], board[:, 1] / board[:, 2]
    th, tw = texture.shape
    tx, ty = (X / units_w * tw).astype(np.float32), (Y / units_h * th).astype(np.float32)
    img = cv2.remap(texture.astype(np.float32), tx.reshape(h, w), ty.reshape(h, w), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=140.0)
    img = cv2.GaussianBlur(cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA), (0, 0), blur)
    img = img + np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_charuco_board_with_partial_views():
    if not hasattr(cv2, "aruco"):
        pytest.skip("ChArUco needs opencv-contrib")
    from calib.intrinsics import CharucoDetector

    det = CharucoDetector(7, 5, 1.0, 0.75, "DICT_4X4_50")
    texture = det.board.generateImage((700, 500), marginSize=0, borderBits=1)
    rng = np.random.default_rng(5)
    views = []
    for i in range(12):
        rvec = np.radians([rng.uniform(-25, 25), rng.uniform(-25, 25), rng.uniform(-10, 10)])
        tvec = [rng.uniform(-5.0, -1.5), rng.uniform(-3.5, -1.0), rng.uniform(9, 13)]
        views.append((f"c{i}.png", render_texture(texture, 7.0, 5.0, rvec, tvec, seed=i)))
    result = calibrate(views, 7, 5, 1.0, detector=det)
    K = result.K
    for got, want in ((K[0, 0], 520.0), (K[1, 1], 515.0), (K[0, 2], 318.0), (K[1, 2], 242.0)):
        assert abs(got - want) / want < 0.01, (got, want)


def test_a_device_probe_without_frames_closes_the_outputs_and_the_camera(tmp_path, monkeypatch, capsys):
    import threading

    from edge.outputs import OUTPUTS, OutputKind
    from edge.outputs.base import LogConfig, LogOutput

    closed = []

    class Watched(LogOutput):
        def close(self) -> None:
            closed.append(True)
            super().close()

    monkeypatch.setitem(OUTPUTS, "watched", OutputKind(LogConfig, lambda cfg, control: Watched()))   # a new type
    empty = tmp_path / "frames"
    empty.mkdir()
    cfg = tmp_path / "device.yaml"
    cfg.write_text(yaml.safe_dump({"camera": {"source": str(empty), "start_timeout_s": 0.3},
                                   "outputs": [{"type": "watched"}]}))
    assert main(["calibrate", "gimbal", "--config", str(cfg), "--profile", str(tmp_path / "g.yaml")]) == 2
    assert "no frames from" in capsys.readouterr().err
    assert closed == [True]
    assert not [t for t in threading.enumerate() if t.name == "frame-grabber" and t.is_alive()]


@pytest.mark.parametrize("pixel, size", [("9000,240", "640x480"), ("320,-1", "640x480"), ("nan,240", "640x480"),
                                         ("1,1", "0x480")])
def test_pixel_to_angle_refuses_a_pixel_outside_the_image(capsys, pixel, size):
    assert main(["calibrate", "pixel-to-angle", "--size", size, "--pixel", pixel]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--size" in err or "--pixel" in err), err
    # The frame's own edges are pixels of it.
    assert main(["calibrate", "pixel-to-angle", "--size", "640x480", "--pixel", "0,0", "--pixel", "640,480"]) == 0
    assert capsys.readouterr().out.count("yaw") == 2
