"""One per-frame step for every consumer: the LOST search in the loop, track, eval and the simulator,
and eval scoring what track wrote."""

import json
import os

import numpy as np
import pytest

from conftest import make_clip_frames, shared_path, write_sequence
from edge.cli.main import main
from edge.trackers.contract import Capabilities, TrackerInfo
from edge.trackers.lost_search import LostSearch, LostSearchSettings
from edge.trackers.state import TrackResult, TrackState


class Scripted:
    """A tracker whose states follow a script; it records the search factor each update saw."""

    capabilities = Capabilities(widen_search=True)
    info = TrackerInfo("scripted", "scripted", "none")

    def __init__(self, states, factor=2.0):
        self.states, self.search_factor, self.seen = list(states), factor, []
        self.base_search_factor = factor

    def set_search_factor(self, factor):
        self.search_factor = factor

    def init(self, frame, box):
        self.box = box
        return TrackResult(box=box, score=1.0, state=TrackState.TRACKING, frame_id=0)

    def update(self, frame):
        self.seen.append(self.search_factor)
        return TrackResult(box=self.box, score=0.5, state=self.states.pop(0), frame_id=len(self.seen))


T, L = TrackState.TRACKING, TrackState.LOST


def test_the_search_widens_while_lost_up_to_its_cap_and_resets_on_tracking_and_on_init():
    tracker = Scripted([T, L, L, L, L, L, T, L, L])
    step = LostSearch(tracker, LostSearchSettings(widen_step=2.0, max_search_factor=10.0))
    step.init(None, (0, 0, 1, 1))
    for _ in range(7):
        step.update(None)
    assert tracker.seen == [2.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]   # widened after each LOST frame, capped
    step.update(None)
    assert tracker.seen[-1] == 2.0 and tracker.search_factor == 4.0   # back to its own after TRACKING
    step.init(None, (0, 0, 1, 1))
    assert tracker.search_factor == 2.0                               # a new target starts at its own


def test_a_tracker_that_cannot_widen_passes_through():
    class Fixed:
        capabilities = Capabilities()   # declares no widening: LostSearch never asks it to
        info = TrackerInfo("fixed", "fixed", "none")

        def init(self, frame, box):
            return TrackResult(box=box, score=1.0, state=T, frame_id=0)

        def update(self, frame):
            return TrackResult(box=(0, 0, 1, 1), score=0.0, state=L, frame_id=1)

    step = LostSearch(Fixed())
    step.init(None, (0, 0, 1, 1))
    assert step.update(None).state is L and step.info.label == "fixed"


def test_the_loop_eval_and_track_share_the_lost_search():
    """Not three copies: the loop wraps its tracker in the same LostSearch, with the config's settings."""
    from edge.config import load_config
    from edge.runtime.loop import TrackingLoop

    cfg = load_config({"tracking": {"widen_step": 1.5, "max_search_factor": 6.0}})
    loop = TrackingLoop(tracker=Scripted([]), grabber=None, outputs=[], config=cfg)
    assert isinstance(loop.tracker, LostSearch)
    assert loop.tracker.settings == LostSearchSettings(1.5, 6.0)


def _auc(path):
    with open(path) as f:
        return json.load(f)["mean"]["auc"]


@pytest.mark.parametrize("source", ["generated", "dev"])
def test_eval_and_eval_of_what_track_wrote_agree(tmp_path, source, capsys):
    """eval runs the same per-frame step as track, so scoring track's CSV gives eval's AUC."""
    if source == "dev":
        seq = shared_path("data", "sequences", "MotorRolling")
        name = "MotorRolling"
    else:
        frames, boxes = make_clip_frames(n=30, size=(200, 150), box=(40, 30, 30, 24), step=(3, 2))
        seq = write_sequence(str(tmp_path / "clip"), frames, boxes)
        name = "clip"
    results = tmp_path / "res"
    results.mkdir()
    assert main(["track", "--video", os.path.join(seq, "img"), "--threads", "1",
                 "--csv", str(results / f"{name}.csv")]) == 0
    assert main(["eval", "--sequences", seq, "--threads", "1", "--json", str(tmp_path / "a.json")]) == 0
    assert main(["eval", "--sequences", seq, "--results", str(results), "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert abs(_auc(tmp_path / "a.json") - _auc(tmp_path / "b.json")) <= 0.002
    assert out.count("LOST on") == 2   # the states in track's CSV are scored too
    a, b = (json.loads((tmp_path / n).read_text())["lost"] for n in ("a.json", "b.json"))
    assert a == b


def test_eval_widens_the_search_while_lost(tmp_path, monkeypatch):
    """A target that vanishes: eval's run goes LOST and the tracker is asked to widen its search,
    as the device loop does."""
    from edge.trackers.nanotrack import NanoTracker

    frames, boxes = make_clip_frames(n=40, size=(240, 180), box=(60, 50, 30, 30), step=(1, 0))
    background = make_clip_frames(n=1, size=(240, 180), box=(0, 0, 1, 1))[0][0]
    for i in range(15, 40):
        frames[i] = background.copy()                      # gone from frame 15 on
    seq = write_sequence(str(tmp_path / "vanish"), frames, boxes)
    factors = []
    original = NanoTracker.set_search_factor
    monkeypatch.setattr(NanoTracker, "set_search_factor", lambda self, f: (factors.append(f), original(self, f)))
    assert main(["eval", "--sequences", seq, "--threads", "1", "--model", "nanotrack-v3",
                 "--json", str(tmp_path / "r.json")]) == 0
    base = 255 / 127
    assert factors and max(factors) > base * 1.5


def test_results_csv_that_is_not_track_output_is_one_line(tmp_path, capsys):
    frames, boxes = make_clip_frames(n=5)
    seq = write_sequence(str(tmp_path / "s"), frames, boxes)
    res = tmp_path / "res"
    res.mkdir()
    (res / "s.csv").write_text("a,b\n1,2\n")
    assert main(["eval", "--sequences", seq, "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a track --csv file" in err


def test_the_noise_band_reaches_nanotrack(tmp_path, capsys):
    """--noise-runs perturbs NanoTrack's search crops too, so its band is a band, not its plain run."""
    from edge.evaluation.rounding_noise import with_noise
    from edge.trackers.catalog import DATA
    from edge.trackers.nanotrack import open_nanotrack

    tracker = open_nanotrack(os.path.join(DATA, "nanotrack", "v3"), threads=1)
    noisy = with_noise(tracker, seed=1)
    crop = np.full((1, 3, 255, 255), 100, np.float32)
    a, b = tracker.engine.features(crop), noisy.engine.features(crop)
    assert a.shape == b.shape and not np.array_equal(a, b) and np.allclose(a, b, atol=1e-2)
    assert (noisy.lost_score_threshold, noisy.lost_frames) == (tracker.lost_score_threshold, tracker.lost_frames)
    template = np.full((1, 3, 127, 127), 100, np.float32)
    assert np.array_equal(tracker.engine.features(template), noisy.engine.features(template))


def test_nanotracks_widened_search_scans_cells_around_the_held_box(monkeypatch):
    """While widened, every other frame's crop is centred on another cell of the grid around the
    tracker's box, nearest first, at the template's scale (not an enlarged crop); in between, on the
    box itself (the authors' step)."""
    from edge.trackers import nanotrack
    from edge.trackers.catalog import DATA

    tracker = nanotrack.open_nanotrack(os.path.join(DATA, "nanotrack", "v3"), threads=1)
    frame = make_clip_frames(n=1, size=(640, 480), box=(300, 220, 40, 40))[0][0]
    tracker.init(frame, (300, 220, 40, 40))
    offsets, sides = [], []
    real_crop = nanotrack.context_crop

    def spy(image, centre, size, side, fill):
        offsets.append(tuple(np.round((np.asarray(centre) - tracker._centre) / (side / 2), 3)))
        sides.append(side)
        return real_crop(image, centre, size, side, fill)

    monkeypatch.setattr(nanotrack, "context_crop", spy)
    normal = round(tracker._context_side() * tracker.base_search_factor)
    tracker.set_search_factor(tracker.base_search_factor * 3)
    for _ in range(10):
        tracker.update(np.zeros_like(frame))          # nothing there: it stays LOST
    assert max(sides) < 1.2 * normal                    # the template's scale, not a 3x crop
    assert offsets[0::2] == [(0.0, 0.0)] * 5            # the authors' step at the box (odd frames)
    scanned = offsets[1::2]
    cells = [(round(i), round(j)) for i, j in scanned]
    assert all(abs(i - ci) < 0.02 and abs(j - cj) < 0.02 for (i, j), (ci, cj) in zip(scanned, cells))  # on the grid
    assert len(set(cells)) == 5 and (0, 0) not in cells
    assert [abs(i) + abs(j) for i, j in cells][:4] == [1, 1, 1, 1]                     # nearest first


def test_one_lost_rule_for_every_tracker_kind():
    """LOST after `frames` low scores in a row, back to TRACKING on the first good one; an unusable
    output is LOST at once and counts as a whole streak."""
    from edge.trackers.state import LostStreak

    rule = LostStreak()
    assert [rule.step(s, 0.5, 3) for s in (0.1, 0.2, 0.3, 0.9)] == [T, T, L, T]
    assert rule.unusable(3) is L and rule.step(0.1, 0.5, 3) is L      # still a streak after it
    assert rule.step(0.9, 0.5, 3) is T
