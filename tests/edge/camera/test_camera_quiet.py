"""A source that does not open is the caller's one line, not OpenCV's or FFmpeg's own log."""

import subprocess
import sys


def test_a_missing_camera_and_a_corrupt_video_print_nothing_of_their_own(tmp_path):
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    code = ("from edge.camera.opencv import OpenCVSource\n"
            "from edge.errors import SourceError\n"
            f"for spec in (9, {str(bad)!r}):\n"
            "    try:\n"
            "        OpenCVSource(spec)\n"
            "    except SourceError as exc:\n"
            "        print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    hint = "see the cameras with `ls /dev/video*`, or give a video file or image folder path"
    assert proc.stdout.splitlines() == [f"cannot open camera 9 (no /dev/video9): {hint}"
                                        if sys.platform.startswith("linux")
                                        else f"cannot open camera 9 (busy, or not a capture device?): {hint}",
                                        f"cannot open video source {bad}"]
    assert proc.stderr == ""


def test_a_camera_device_that_does_not_open_says_what_to_try(tmp_path):
    from edge.camera.opencv import OpenCVSource
    from edge.errors import SourceError

    for spec in ("/dev/video97", 97):
        try:
            OpenCVSource(spec)
        except SourceError as exc:
            text = str(exc)
        else:   # pragma: no cover - a machine with 98 cameras
            continue
        assert text.startswith(f"cannot open camera {spec} (")
        assert "`ls /dev/video*`" in text and "video file or image folder path" in text and "\n" not in text
