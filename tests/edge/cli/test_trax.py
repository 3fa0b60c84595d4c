"""``edge-track trax``: a TraX client (vot-trax's own) drives the server through pipes, as the VOT
toolkit does; bad input from the client ends the session with a TraX quit that says why, and exit
status 2, never a traceback. The real toolkit's run is tests/edge/evaluation/test_vot_toolkit.py."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from edge.sample import BUNDLED_MODEL, SAMPLE_FRAMES, SAMPLE_GROUNDTRUTH

trax = pytest.importorskip("trax", reason="needs vot-trax (pip install -e '.[vot]')")
from trax.client import Client  # noqa: E402

if not os.path.isfile(BUNDLED_MODEL):
    pytest.skip("needs the bundled model (edge/data/model/)", allow_module_level=True)


class Session:
    """``edge-track trax`` in a child process, its stdin/stdout the TraX channel."""

    def __init__(self, *args):
        env = dict(os.environ, PYTHONPATH=REPO)
        self.proc = subprocess.Popen([sys.executable, "-m", "edge.cli.main", "trax", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
        # log: vot-trax 4.0.2 cannot set up a client without a logger (log=False fails in ctypes)
        self.client = Client(stream=(self.proc.stdin.fileno(), self.proc.stdout.fileno()), timeout=30,
                             log=lambda message: None)

    def end(self, timeout=30):
        """Exit status and stderr of the server."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err.decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start():
    """Starts a Session; any left running when the test ends is killed."""
    sessions = []

    def make(*args):
        sessions.append(Session(*args))
        return sessions[-1]

    yield make
    for session in sessions:
        session.kill()


def frame(i):
    return {"color": trax.FileImage.create(os.path.join(SAMPLE_FRAMES, f"{i:04d}.jpg"))}


def gt():
    return np.loadtxt(SAMPLE_GROUNDTRUTH, delimiter=",")


def test_a_session_tracks_the_sample_as_track_does_and_ends_cleanly(start):
    from edge.build import open_named_tracker
    from edge.camera.folder import read_rgb
    from edge.trackers.lost_search import LostSearch

    session = start()
    assert session.client.tracker_name == "edge-track"
    assert session.client.region_formats == ["rectangle"] and session.client.image_formats == ["path"]
    first = gt()[0]
    objects, _ = session.client.initialize(frame(1), [(trax.Rectangle.create(*first), {})], {})
    got = []
    for i in range(2, 11):
        objects, _ = session.client.frame(frame(i), {}, [])
        region, properties = objects[0]
        got.append(region.bounds())
        assert 0.0 <= float(properties["confidence"]) <= 1.0
    session.client.quit()
    code, err = session.end()
    assert code == 0, err
    assert "Traceback" not in err
    # the default tracker in this process, through the device's step: the same boxes, up to the text
    # form TraX carries (float32)
    tracker = LostSearch(open_named_tracker(None)[0])
    tracker.init(read_rgb(os.path.join(SAMPLE_FRAMES, "0001.jpg")), tuple(first))
    want = [tracker.update(read_rgb(os.path.join(SAMPLE_FRAMES, f"{i:04d}.jpg"))).box for i in range(2, 11)]
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-3)


@pytest.mark.parametrize("case, reason", [
    ("empty region", "the region is empty"),
    ("missing image", "cannot read image"),
    ("missing frame", "cannot read image"),
    ("box outside the image", "initial box"),
])
def test_bad_client_input_ends_the_session_with_a_trax_reason_and_exit_2(case, reason, start, tmp_path):
    session = start()
    client = session.client
    box = tuple(gt()[0])
    with pytest.raises(trax.TraxException) as info:
        if case == "empty region":
            client.initialize(frame(1), [(trax.Rectangle.create(box[0], box[1], 0, 0), {})], {})
        elif case == "missing image":
            missing = {"color": trax.FileImage.create(str(tmp_path / "nope.jpg"))}
            client.initialize(missing, [(trax.Rectangle.create(*box), {})], {})
        elif case == "missing frame":
            client.initialize(frame(1), [(trax.Rectangle.create(*box), {})], {})
            client.frame({"color": trax.FileImage.create(str(tmp_path / "gone.jpg"))}, {}, [])
        else:
            client.initialize(frame(1), [(trax.Rectangle.create(5000, 5000, 10, 10), {})], {})
    assert reason in str(info.value)                                  # the client is told why
    code, err = session.end()
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("edge-track: error: TraX session ended:") and reason in last


def test_a_terminal_is_told_to_use_a_client_instead_of_waiting():
    import pty

    main, child = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "edge.cli.main", "trax"], stdin=child, capture_output=True,
                              timeout=60, env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
    finally:
        os.close(main)
        os.close(child)
    assert proc.returncode == 2
    assert b"TraX client" in proc.stderr and b"Traceback" not in proc.stderr


def test_a_polygon_reaches_the_tracker_as_its_bounding_rectangle(start):
    """The server declares rectangles only, so libtrax converts a client's polygon on the way (as
    the VOT toolkit converts its annotations): the session tracks the polygon's bounds."""
    session = start()
    x, y, w, h = gt()[0]
    polygon = trax.Polygon.create([(x, y + h / 2), (x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h)])
    objects, _ = session.client.initialize(frame(1), [(polygon, {})], {})
    np.testing.assert_allclose(objects[0][0].bounds(), (x, y, w, h), atol=1e-3)
    session.client.quit()
    assert session.end()[0] == 0


@pytest.mark.parametrize("line", [b'@@TRAX:initialize "file:///x.jpg" "1,2,3,4"', b"@@TRAX:frobnicate", b"@@TRAX:"])
def test_a_malformed_message_ends_the_session_with_a_trax_reason_and_exit_2(line):
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli.main", "trax"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=REPO),
                            cwd=REPO)
    try:
        assert proc.stdout.readline().startswith(b"@@TRAX:hello ")
        out, err = proc.communicate(line + b"\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    assert out.startswith(b'@@TRAX:quit "trax.reason=') and b"Traceback" not in err
