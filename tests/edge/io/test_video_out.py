"""One video writer for `track --out` and `telemetry.record`: a file it cannot write is a one-line
error before any frame, never a recording that silently holds nothing."""

import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.io.video_out import VideoOut
from edge.runtime.sinks import build_recorder


def _frames(n, width=64, height=48):
    for i in range(n):
        image = np.full((height, width, 3), 40 * i % 255, np.uint8)
        yield image


def test_a_recording_opencv_cannot_open_is_refused_at_start(tmp_path):
    # Every path check passes (a writable folder, a known ending); only OpenCV's isOpened() says no.
    with pytest.raises(SourceError, match="cannot write video"):
        build_recorder(str(tmp_path / "run.mp4"), 25.0, (0, 0))


def test_a_recording_under_a_file_is_refused_before_any_frame(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.raises(SourceError, match="not a folder"):
        build_recorder(str(blocker / "run.avi"), 25.0, (64, 48))


def test_the_recording_holds_every_frame_at_the_stream_size(tmp_path):
    path = str(tmp_path / "run.avi")
    record = build_recorder(path, 25.0, (640, 480))   # the configured size; the stream is smaller
    for image in _frames(5):
        record(image, None)
    record.close()
    cap = cv2.VideoCapture(path)
    sizes = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        sizes.append(frame.shape[:2])
    cap.release()
    assert sizes == [(48, 64)] * 5


def test_an_unknown_ending_is_one_line_without_opencv_noise(tmp_path, capfd):
    with pytest.raises(SourceError, match=r"x\.gif: a video needs one of the endings"):
        VideoOut(str(tmp_path / "x.gif"), 25.0, (64, 48))
    assert capfd.readouterr().err == ""


def test_a_recording_in_a_missing_folder_creates_it(tmp_path):
    # `config check` accepts such a path (missing folders are created at start): run must too.
    path = tmp_path / "new" / "deeper" / "run.avi"
    out = VideoOut(str(path), 25.0, (64, 48))
    for image in _frames(3):
        out.write(image)
    out.close()
    assert path.stat().st_size > 0
