"""loop_file: a demo clip played again from its start is not a camera outage."""

import logging
import time

import numpy as np

from edge.camera.base import Frame
from edge.camera.grabber import LatestFrameGrabber


class Clip:
    opened = 0

    def __init__(self, n):
        Clip.opened += 1
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield Frame(np.full((4, 4, 3), i, np.uint8), time.monotonic_ns(), i)

    def close(self):
        pass


def test_a_replayed_clip_is_no_reconnect_and_no_warning(caplog):
    Clip.opened = 0
    caplog.set_level(logging.DEBUG, logger="edge.camera")
    grabber = LatestFrameGrabber(lambda: Clip(3), reconnect=False, replay=True, pace_fps=200,
                                 reconnect_initial_s=5.0).start()
    try:
        deadline = time.monotonic() + 20
        while Clip.opened < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        grabber.stop()
    assert Clip.opened >= 4                       # played again at once: no 5 s backoff between passes
    assert grabber.reconnects == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_replayed_source_with_no_frames_backs_off_instead_of_spinning():
    Clip.opened = 0
    grabber = LatestFrameGrabber(lambda: Clip(0), reconnect=False, replay=True, reconnect_initial_s=0.5).start()
    time.sleep(1.2)
    grabber.stop()
    assert 1 <= Clip.opened <= 4, Clip.opened
