"""Pixel -> angle and the rate controller: limits, anti-windup, fail-safe."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import ControlConfig
from edge.control.camera_model import CameraModel
from edge.control.controller import GimbalController
from edge.errors import ConfigError


@settings(max_examples=100, deadline=None)
@given(yaw=st.floats(-25, 25), pitch=st.floats(-20, 20))
def test_pixel_angle_round_trip(yaw, pitch):
    cam = CameraModel.from_fov(640, 480, 62.2, 48.8)
    x, y = cam.pixel(yaw, pitch)
    assert cam.angles_deg(x, y) == pytest.approx((yaw, pitch), abs=1e-9)


def test_fov_edges_and_centre():
    cam = CameraModel.from_fov(640, 480, 60.0, 45.0)
    assert cam.angles_deg(320, 240) == (0.0, 0.0)
    assert cam.angles_deg(640, 240)[0] == pytest.approx(30.0)
    assert cam.angles_deg(320, 0)[1] == pytest.approx(22.5)   # up is positive


def test_calibration_with_distortion_and_size_check(tmp_path):
    import yaml

    path = tmp_path / "cam.yaml"
    K = [[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]]
    path.write_text(yaml.safe_dump({"K": K, "dist": [-0.2, 0.05, 0, 0, 0], "image_size": [640, 480]}))
    cam = CameraModel.from_calibration_file(str(path), 640, 480)
    yaw, _ = cam.angles_deg(600, 240)
    assert yaw > math.degrees(math.atan(280 / 500))   # barrel distortion: the true ray is wider
    with pytest.raises(ConfigError, match="640x480, the stream is 1280x720"):
        CameraModel.from_calibration_file(str(path), 1280, 720)


def cfg(**kw):
    return ControlConfig(**kw)


def test_rates_are_limited_in_value_and_slew():
    ctl = GimbalController(cfg(kp=100.0, ki=0.0, max_rate_dps=50.0, max_accel_dps2=100.0, deadband_deg=0.0))
    rates = [ctl.update(20.0, 0.0, 0.1).yaw_rate_dps for _ in range(10)]
    assert np.all(np.diff([0.0] + rates) <= 10.0 + 1e-9)      # 100 deg/s^2 * 0.1 s
    assert max(rates) == pytest.approx(50.0)


def test_deadband_and_direction():
    ctl = GimbalController(cfg(deadband_deg=1.0, ki=0.0, feedforward=0.0, max_accel_dps2=1e5))
    assert ctl.update(0.5, -0.5, 0.05).yaw_rate_dps == 0.0
    cmd = ctl.update(5.0, -5.0, 0.05)
    assert cmd.yaw_rate_dps > 0 and cmd.pitch_rate_dps < 0 and cmd.active


def test_integral_does_not_wind_up_while_saturated():
    ctl = GimbalController(cfg(kp=10.0, ki=5.0, max_rate_dps=20.0, integral_limit_deg_s=1000.0, max_accel_dps2=1e5))
    for _ in range(200):
        ctl.update(30.0, 0.0, 0.05)
    assert abs(ctl.yaw.integral) < 1.0


def test_non_finite_inputs_stop():
    ctl = GimbalController(cfg())
    ctl.update(5.0, 5.0, 0.05)
    for bad in (float("nan"), float("inf")):
        cmd = ctl.update(bad, 0.0, 0.05)
        assert not cmd.active and cmd.yaw_rate_dps == 0.0 and cmd.pitch_rate_dps == 0.0


def test_axis_inversion():
    a = GimbalController(cfg(invert_pan=True, max_accel_dps2=1e5)).update(5.0, 5.0, 0.05)
    b = GimbalController(cfg(max_accel_dps2=1e5)).update(5.0, 5.0, 0.05)
    assert a.yaw_rate_dps == -b.yaw_rate_dps and a.pitch_rate_dps == b.pitch_rate_dps
