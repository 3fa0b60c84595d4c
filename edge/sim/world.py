"""A virtual pan-tilt camera looking at a scene with a moving target.

The scene is a panorama in angular coordinates (``ppd`` pixels per degree, yaw to the right,
pitch up). The camera renders what a pinhole camera (the same ``CameraModel`` the controller
uses) sees at the gimbal's current angles. The gimbal follows rate commands after a delay, within
a rate and an acceleration limit. Time is virtual: one ``step`` per frame, so runs are exact and
repeatable.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from edge.control.camera_model import CameraModel


@dataclass
class SimConfig:
    width: int = 320
    height: int = 240
    fps: float = 30.0
    hfov_deg: float = 60.0
    vfov_deg: float = 46.8
    ppd: float = 12.0                    # panorama pixels per degree
    delay_s: float = 0.05                # command -> motion
    max_rate_dps: float = 120.0
    max_accel_dps2: float = 600.0
    path: str = "lissajous"              # lissajous, random, still
    amplitude_deg: float = 20.0
    period_s: float = 12.0
    target_size_deg: float = 6.0
    occlusions: tuple = ()               # ((start_s, end_s), ...): target hidden
    seed: int = 0
    # How the real head differs from what is commanded (what `calibrate gimbal` recovers):
    yaw_sign: int = 1
    pitch_sign: int = 1
    yaw_gain: float = 1.0
    pitch_gain: float = 1.0
    roll_offset_deg: float = 0.0         # camera rotated about its optical axis on the head


def make_panorama(cfg: SimConfig, span_deg: float = 200.0, image: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB panorama covering ±span/2 in yaw and ±span/4 in pitch."""
    width, height = int(span_deg * cfg.ppd), int(span_deg / 2 * cfg.ppd)
    if image is not None:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(cfg.seed)
    small = rng.integers(40, 200, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    pano = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-20, 20, (height, width, 3))
    return np.clip(pano.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def make_target_sprite(size: int = 48, seed: int = 1) -> np.ndarray:
    """A high-contrast textured patch, easy to tell from the background."""
    rng = np.random.default_rng(seed)
    sprite = np.zeros((size, size, 3), np.uint8)
    cells = rng.integers(0, 2, (6, 6))
    palette = np.array([[230, 40, 40], [250, 230, 40]], np.uint8)
    sprite[:] = cv2.resize(palette[cells], (size, size), interpolation=cv2.INTER_NEAREST)
    cv2.rectangle(sprite, (0, 0), (size - 1, size - 1), (20, 20, 20), 2)
    return sprite


class Gimbal:
    """Pan-tilt head: commanded rates take effect after ``delay_s``, limited in rate and accel."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.yaw = 0.0
        self.pitch = 0.0
        self.rate = [0.0, 0.0]
        self._pending: deque = deque()
        self._commanded = (0.0, 0.0)

    def command(self, t: float, yaw_rate: float, pitch_rate: float) -> None:
        self._pending.append((t + self.cfg.delay_s, "rate", yaw_rate, pitch_rate))

    def command_angle(self, t: float, yaw_deg: float, pitch_deg: float) -> None:
        """A position set-point (servo-like heads); the head drives there within its limits."""
        self._pending.append((t + self.cfg.delay_s, "angle", yaw_deg, pitch_deg))

    def step(self, t: float, dt: float) -> None:
        while self._pending and self._pending[0][0] <= t + 1e-9:
            _, kind, y, p = self._pending.popleft()
            self._mode, self._commanded = kind, (y, p)
        cfg = self.cfg
        wanted = (self._commanded[0] * cfg.yaw_sign * cfg.yaw_gain,
                  self._commanded[1] * cfg.pitch_sign * cfg.pitch_gain)
        if getattr(self, "_mode", "rate") == "angle":
            # Position loop of the head: reach the set-point in ~0.1 s, within the rate limit.
            wanted = ((self._commanded[0] - self.yaw) / 0.1, (self._commanded[1] - self.pitch) / 0.1)
        for axis, target in enumerate(wanted):
            target = max(-cfg.max_rate_dps, min(cfg.max_rate_dps, target))
            delta = max(-cfg.max_accel_dps2 * dt, min(cfg.max_accel_dps2 * dt, target - self.rate[axis]))
            self.rate[axis] += delta
        self.yaw += self.rate[0] * dt
        self.pitch = max(-80.0, min(80.0, self.pitch + self.rate[1] * dt))


class World:
    def __init__(self, cfg: SimConfig, panorama: np.ndarray | None = None, sprite: np.ndarray | None = None) -> None:
        self.cfg = cfg
        self.camera = CameraModel.from_fov(cfg.width, cfg.height, cfg.hfov_deg, cfg.vfov_deg)
        self.pano = make_panorama(cfg) if panorama is None else panorama
        self.sprite = make_target_sprite() if sprite is None else sprite
        self.gimbal = Gimbal(cfg)
        self.t = 0.0
        self._rng = np.random.default_rng(cfg.seed + 7)
        self._walk = np.zeros(2)
        self._walk_v = np.zeros(2)
        # Per-pixel ray angles relative to the optical axis, computed once.
        u, v = np.meshgrid(np.arange(cfg.width, dtype=np.float64), np.arange(cfg.height, dtype=np.float64))
        xn = (u - self.camera.K[0, 2]) / self.camera.K[0, 0]
        yn = (v - self.camera.K[1, 2]) / self.camera.K[1, 1]
        ray_yaw = np.degrees(np.arctan(xn))
        ray_pitch = np.degrees(np.arctan2(-yn, np.hypot(1.0, xn)))
        # Camera frame -> head frame: the camera may be rolled on the head.
        r = math.radians(cfg.roll_offset_deg)
        self._ray_yaw = math.cos(r) * ray_yaw - math.sin(r) * ray_pitch
        self._ray_pitch = math.sin(r) * ray_yaw + math.cos(r) * ray_pitch

    # -- target motion -----------------------------------------------------------------------
    def target_angles(self, t: float | None = None) -> tuple[float, float]:
        cfg = self.cfg
        t = self.t if t is None else t
        if cfg.path == "still":
            return (0.0, 0.0)
        if cfg.path == "lissajous":
            w = 2 * math.pi / cfg.period_s
            return (cfg.amplitude_deg * math.sin(w * t), 0.4 * cfg.amplitude_deg * math.sin(2 * w * t))
        return (float(self._walk[0]), float(self._walk[1]))

    def target_visible(self) -> bool:
        return not any(a <= self.t < b for a, b in self.cfg.occlusions)

    def truth_box(self) -> tuple[float, float, float, float] | None:
        """The target's box in the current image, or None if hidden or outside the view."""
        if not self.target_visible():
            return None
        ty, tp = self.target_angles()
        head_yaw, head_pitch = ty - self.gimbal.yaw, tp - self.gimbal.pitch
        r = math.radians(self.cfg.roll_offset_deg)     # head frame -> camera frame
        rel_yaw = math.cos(r) * head_yaw + math.sin(r) * head_pitch
        rel_pitch = -math.sin(r) * head_yaw + math.cos(r) * head_pitch
        if abs(rel_yaw) > 80 or abs(rel_pitch) > 80:
            return None
        cx, cy = self.camera.pixel(rel_yaw, rel_pitch)
        half = self.camera.K[0, 0] * math.tan(math.radians(self.cfg.target_size_deg / 2))
        box = (cx - half, cy - half, 2 * half, 2 * half)
        if box[0] + box[2] <= 0 or box[1] + box[3] <= 0 or box[0] >= self.cfg.width or box[1] >= self.cfg.height:
            return None
        return box

    def error_deg(self) -> float:
        ty, tp = self.target_angles()
        return math.hypot(ty - self.gimbal.yaw, tp - self.gimbal.pitch)

    # -- time and rendering ------------------------------------------------------------------
    def step(self) -> None:
        dt = 1.0 / self.cfg.fps
        if self.cfg.path == "random":
            self._walk_v = 0.95 * self._walk_v + self._rng.normal(0, 1.5, 2)
            self._walk = np.clip(self._walk + self._walk_v * dt, -self.cfg.amplitude_deg, self.cfg.amplitude_deg)
        self.gimbal.step(self.t, dt)
        self.t += dt

    def render(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB view from the current gimbal angles."""
        ph, pw = self.pano.shape[:2]
        map_x = ((self._ray_yaw + self.gimbal.yaw) * self.cfg.ppd + pw / 2).astype(np.float32)
        map_y = (ph / 2 - (self._ray_pitch + self.gimbal.pitch) * self.cfg.ppd).astype(np.float32)
        view = cv2.remap(self.pano, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        box = self.truth_box()
        if box is not None:
            self._paste(view, box)
        return view

    def _paste(self, view: np.ndarray, box) -> None:
        x, y, w, h = box
        size = max(2, int(round(w)))
        sprite = cv2.resize(self.sprite, (size, size), interpolation=cv2.INTER_AREA)
        x0, y0 = int(round(x)), int(round(y))
        H, W = view.shape[:2]
        sx0, sy0 = max(0, -x0), max(0, -y0)
        dx0, dy0 = max(0, x0), max(0, y0)
        dx1, dy1 = min(W, x0 + size), min(H, y0 + size)
        if dx1 > dx0 and dy1 > dy0:
            view[dy0:dy1, dx0:dx1] = sprite[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
