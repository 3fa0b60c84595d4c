"""Pixel -> viewing angle, through the camera calibration when present, else the field of view.

Angles are degrees: ``yaw`` positive to the right of the optical axis, ``pitch`` positive above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.errors import ConfigError


@dataclass(frozen=True)
class CameraModel:
    width: int
    height: int
    K: np.ndarray                  # (3, 3) intrinsics
    dist: np.ndarray | None = None  # OpenCV distortion coefficients, or None
    model: str = "pinhole"         # or "fisheye" (cv2.fisheye's 4-coefficient model)

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float, vfov_deg: float) -> "CameraModel":
        fx = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        fy = (height / 2) / math.tan(math.radians(vfov_deg) / 2)
        K = np.array([[fx, 0, width / 2], [0, fy, height / 2], [0, 0, 1]], dtype=np.float64)
        return cls(width, height, K)

    @classmethod
    def from_calibration_file(cls, path: str, width: int, height: int) -> "CameraModel":
        from edge.io.safe_yaml import read_yaml

        data = read_yaml(path, "camera calibration")
        try:
            K = np.asarray(data["K"], dtype=np.float64).reshape(3, 3)
            dist = np.asarray(data.get("dist", []), dtype=np.float64).reshape(-1)
            size = tuple(int(v) for v in data["image_size"])
            model = str(data.get("model", "pinhole"))
            if model not in ("pinhole", "fisheye"):
                raise ValueError(f"unknown model {model!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"camera calibration {path} is unreadable ({type(exc).__name__}: {exc})") from None
        if size != (width, height):
            raise ConfigError(f"camera calibration {path} is for {size[0]}x{size[1]}, the stream is "
                              f"{width}x{height}: recalibrate or set camera.width/height to match")
        return cls(width, height, K, dist if dist.size else None, model)

    def normalized(self, x_px: float, y_px: float) -> tuple[float, float]:
        """Undistorted normalised image coordinates of a pixel."""
        if self.dist is not None:
            import cv2

            pt = np.array([[[x_px, y_px]]], np.float64)
            if self.model == "fisheye":
                pt = cv2.fisheye.undistortPoints(pt, self.K, self.dist.reshape(4, 1))
            else:
                pt = cv2.undistortPoints(pt, self.K, self.dist)
            return float(pt[0, 0, 0]), float(pt[0, 0, 1])
        return (x_px - self.K[0, 2]) / self.K[0, 0], (y_px - self.K[1, 2]) / self.K[1, 1]

    def angles_deg(self, x_px: float, y_px: float) -> tuple[float, float]:
        """(yaw, pitch) of the ray through a pixel, relative to the optical axis."""
        xn, yn = self.normalized(x_px, y_px)
        yaw = math.degrees(math.atan(xn))
        pitch = math.degrees(math.atan2(-yn, math.hypot(1.0, xn)))
        return yaw, pitch

    def pixel(self, yaw_deg: float, pitch_deg: float) -> tuple[float, float]:
        """Inverse of ``angles_deg`` for an undistorted camera (the simulator's projection)."""
        xn = math.tan(math.radians(yaw_deg))
        yn = -math.tan(math.radians(pitch_deg)) * math.hypot(1.0, xn)
        return self.K[0, 0] * xn + self.K[0, 2], self.K[1, 1] * yn + self.K[1, 2]
