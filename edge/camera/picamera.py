"""Raspberry Pi cameras through picamera2 (apt's python3-picamera2; make the venv with
--system-site-packages). Imported only when asked for.

picamera2 names formats after libcamera's little-endian words: "BGR888" is laid out R, G, B in
memory, which is the RGB the tracker wants. Capture times come from the sensor timestamp.
"""

from __future__ import annotations

import time

from edge.camera.base import Frame
from edge.errors import SourceError


class PiCamera2Source:
    color_order = "RGB"

    def __init__(self, width: int, height: int, fps: float, *, picamera2_module=None) -> None:
        if picamera2_module is None:
            try:
                import picamera2 as picamera2_module
            except ImportError:
                raise SourceError("picamera2 is not available: on Raspberry Pi OS `apt install python3-picamera2` "
                                  "and create the venv with --system-site-packages") from None
        try:
            self._cam = picamera2_module.Picamera2()
            config = self._cam.create_video_configuration(
                main={"size": (width, height), "format": "BGR888"},
                controls={"FrameRate": float(fps)}, buffer_count=4)
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:
            raise SourceError(f"cannot open the Pi camera: {exc}") from None
        self.name = "picamera2"

    def __iter__(self):
        index = 0
        while self._cam is not None:
            try:
                request = self._cam.capture_request()
            except Exception:
                return
            try:
                image = request.make_array("main").copy()
                sensor_ns = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()
            # SensorTimestamp is CLOCK_BOOTTIME; express the capture time on our monotonic clock.
            now_mono = time.monotonic_ns()
            if sensor_ns:
                age = max(0, time.clock_gettime_ns(time.CLOCK_BOOTTIME) - int(sensor_ns))
                t_capture = now_mono - age
            else:
                t_capture = now_mono
            yield Frame(image=image, t_capture_ns=t_capture, index=index)
            index += 1

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None
