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
    assert proc.stdout.splitlines() == ["cannot open camera 9 (no /dev/video9)" if sys.platform.startswith("linux")
                                        else "cannot open camera 9", f"cannot open video source {bad}"]
    assert proc.stderr == ""
