"""VitTrack: OpenCV's ``cv2.TrackerVit`` as a peer, and the runtime's own loop on onnxruntime
(``edge.trackers.vittrack``), which must give OpenCV's boxes."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import make_clip_frames, shared_path, write_sequence
from edge.camera.folder import read_rgb
from edge.errors import ConfigError
from edge.evaluation.datasets import find_sequences
from edge.evaluation.peers import create_peer
from edge.trackers.state import TrackState
from edge.trackers.vittrack import (
    MEAN,
    OUTPUTS,
    SCALE,
    VitTracker,
    VitTrackModel,
    crop_square,
    hanning_window,
    open_vittrack,
)


def vittrack_file() -> str:
    return shared_path("models", "vittrack", "vitTracker.onnx")


def needs_tracker_vit():
    if not hasattr(cv2, "TrackerVit"):
        pytest.skip(f"OpenCV {cv2.__version__} has no cv2.TrackerVit (4.9 or later)")


def one_line_failure(capsys, argv, *needles):
    from edge.cli.main import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# -- the runtime loop matches OpenCV's -------------------------------------------------------

def test_own_loop_gives_opencvs_boxes_on_the_dev_sequences():
    """Same crops, normalisation, window, threshold and integer box arithmetic as cv2.TrackerVit:
    only the engine differs (onnxruntime against OpenCV's DNN, outputs within ~2e-6), so the
    boxes may differ by a pixel where a floor lands on an integer; measured here: 0 px."""
    needs_tracker_vit()
    path = vittrack_file()
    sequences = find_sequences(shared_path("data", "sequences"))
    assert len(sequences) == 5
    for seq in sequences:
        theirs, ours = create_peer("vittrack", vittrack_model=path), open_vittrack(path, threads=1)
        first = read_rgb(seq.frames[0])
        theirs.init(first, seq.gt[0])
        ours.init(first, seq.gt[0])
        worst = 0.0
        for frame_path in seq.frames[1:]:
            frame = read_rgb(frame_path)
            a, b = theirs.update(frame), ours.update(frame)
            worst = max(worst, float(np.abs(np.subtract(a.box, b.box)).max()))
            assert b.score == pytest.approx(a.score, abs=1e-3), seq.name
        assert worst <= 1.0, f"{seq.name}: boxes differ by {worst} px"


def test_crop_is_black_outside_the_frame_and_keeps_the_frames_edges():
    frame = np.full((40, 60, 3), 200, np.uint8)
    crop, side = crop_square(frame, (50, 30, 10, 10), 2, 20)     # 20 px square at (45, 25): 15 x 15 inside
    assert side == 20
    assert crop.shape == (20, 20, 3)
    assert np.all(crop[:15, :15] == 200) and np.all(crop[15:] == 0) and np.all(crop[:, 15:] == 0)


def test_window_is_positive_at_the_border_and_peaks_in_the_middle():
    w = hanning_window(16)
    assert w.shape == (16, 16) and w.dtype == np.float32
    assert w.min() > 0 and w[0, 0] == w.min()
    assert w[7, 7] == w.max() == w[8, 8]     # symmetric: the two middle cells tie


# -- the runtime tracker's verbs, on a fake network -----------------------------------------

class FakeNet:
    """Maps with one peak; ``size`` in crop units, ``score`` per call (None: non-finite)."""

    name = "fake"

    def __init__(self, scores, cell=(8, 8), size=(0.25, 0.25)):
        self.scores, self.cell, self.size, self.searches = list(scores), cell, size, []

    def run(self, template, search):
        self.searches.append(search)
        score = self.scores.pop(0) if self.scores else 0.9
        maps = [np.zeros(shape, np.float32) for shape in OUTPUTS.values()]
        row, col = self.cell
        maps[0][0, 0, row, col] = np.nan if score is None else score
        maps[1][0, :, row, col] = self.size
        return maps


def test_lost_after_lost_frames_below_the_threshold_and_the_box_holds():
    frame = np.full((120, 160, 3), 90, np.uint8)
    net = FakeNet([0.9, 0.1, 0.1, 0.1, 0.9], cell=(9, 8))
    tracker = VitTracker(net, lost_score_threshold=0.3, lost_frames=2)
    tracker.init(frame, (60, 40, 20, 20))
    moved = tracker.update(frame)
    assert moved.state is TrackState.TRACKING and moved.box != (60.0, 40.0, 20.0, 20.0)
    states = [tracker.update(frame) for _ in range(3)]
    assert [r.state for r in states] == [TrackState.TRACKING, TrackState.LOST, TrackState.LOST]
    assert all(r.box == moved.box for r in states)           # below 0.20 the box stays put
    assert tracker.update(frame).state is TrackState.TRACKING


def test_non_finite_output_is_lost_at_once_and_invalid():
    frame = np.full((120, 160, 3), 90, np.uint8)
    tracker = VitTracker(FakeNet([None]), lost_frames=5)
    tracker.init(frame, (60, 40, 20, 20))
    result = tracker.update(frame)
    assert result.state is TrackState.LOST and not result.valid and result.score == 0.0
    assert result.box == (60.0, 40.0, 20.0, 20.0)


def test_a_wider_search_still_reports_frame_pixels():
    """The size map is in crop units: a crop twice as wide showing the same 20 px box predicts
    half the size, and the box comes back the same."""
    frame = np.full((400, 400, 3), 90, np.uint8)
    boxes = []
    for factor, size in ((4, 0.25), (8, 0.125)):
        tracker = VitTracker(FakeNet([], cell=(8, 8), size=(size, size)))
        tracker.init(frame, (190, 190, 20, 20))
        tracker.set_search_factor(factor)
        assert tracker.search_factor == factor
        boxes.append(tracker.update(frame).box)
    assert boxes[0] == boxes[1]
    with pytest.raises(ConfigError):
        tracker.set_search_factor(math.inf)


def test_the_frames_colour_order_is_honoured():
    rgb = make_clip_frames(n=1, size=(160, 120))[0][0]
    inputs = []
    for order, frame in (("RGB", rgb), ("BGR", rgb[:, :, ::-1].copy())):
        net = FakeNet([])
        tracker = VitTracker(net, frame_color_order=order)
        tracker.init(frame, (40, 30, 24, 20))
        tracker.update(frame)
        inputs.append(net.searches[0])
    np.testing.assert_array_equal(inputs[0], inputs[1])
    # OpenCV's order (BGR) by default; input_order="RGB" hands the network the other one.
    net = FakeNet([])
    tracker = VitTracker(net, input_order="RGB")
    tracker.init(rgb, (40, 30, 24, 20))
    tracker.update(rgb)
    def pixels(blob):
        return blob[0] / SCALE[:, None, None] + MEAN[:, None, None]

    np.testing.assert_allclose(pixels(net.searches[0]), pixels(inputs[0])[::-1], atol=1e-3)
    assert tracker.info.label == "VitTrack (RGB input)"
    for bad in ({"frame_color_order": "YUV"}, {"input_order": "rgb"}):
        with pytest.raises(ConfigError):
            VitTracker(FakeNet([]), **bad)


def test_bad_initial_boxes_and_update_before_init():
    tracker = VitTracker(FakeNet([]))
    frame = np.zeros((50, 50, 3), np.uint8)
    for box in [(0, 0, 0, 10), (0, 0, math.nan, 10), (0, 0, -3, 4)]:
        with pytest.raises(ConfigError):
            tracker.init(frame, box)
    with pytest.raises(RuntimeError):
        tracker.update(frame)


def test_runtime_attributes_like_nanotracks():
    tracker = open_vittrack(vittrack_file(), threads=1)
    assert tracker.engine.name == "onnxruntime" and tracker.info.label == "VitTrack"
    assert tracker.meta.preset == "vittrack" and tracker.meta.search_size == 256
    assert tracker.search_factor == 4 and tracker.box is None


# -- files that are not VitTrack's -----------------------------------------------------------

def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    bad = tmp_path / "vit.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a VitTrack model: not valid ONNX") as info:
        VitTrackModel(str(bad))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="not found"):
        VitTrackModel(str(tmp_path / "missing.onnx"))


def test_another_onnx_model_is_refused_naming_its_inputs():
    nano = shared_path("models", "opencv", "nanotrack_backbone_sim.onnx")
    with pytest.raises(ConfigError, match="its inputs are input 1x3x255x255, VitTrack's are template 1x3x128x128"):
        VitTrackModel(nano)


def test_eval_with_a_wrong_file_or_none_is_one_line(capsys, tmp_path):
    seq = write_sequence(str(tmp_path / "sq"), *make_clip_frames(n=3))
    bad = tmp_path / "v.onnx"
    bad.write_bytes(b"\x00" * 10)
    for tracker in ("vittrack", "vittrack-onnxruntime"):
        one_line_failure(capsys, ["eval", "--sequences", seq, "--tracker", tracker, "--vittrack-model", str(bad)],
                         "is not a VitTrack model")
        one_line_failure(capsys, ["eval", "--sequences", seq, "--tracker", tracker], "needs --vittrack-model")


@pytest.mark.parametrize("tracker", ["vittrack", "vittrack-onnxruntime", "vittrack-rgb"])
def test_eval_runs_both_and_names_them(tmp_path, tracker):
    from edge.cli.main import main

    if tracker == "vittrack":
        needs_tracker_vit()
    frames, boxes = make_clip_frames(n=12, size=(320, 240), box=(120, 90, 40, 32), step=(3, 2))
    seq = write_sequence(str(tmp_path / "square"), frames, boxes)
    out = tmp_path / "r.json"
    assert main(["eval", "--sequences", seq, "--tracker", tracker, "--vittrack-model", vittrack_file(),
                 "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["tracker"] == tracker
    assert report["mean"]["auc"] > 0.5


# -- bench ------------------------------------------------------------------------------------

@pytest.mark.parametrize("peer", ["vittrack", "vittrack-onnxruntime"])
def test_bench_worker_runs_vittrack_without_torch(tmp_path, peer):
    if peer == "vittrack":
        needs_tracker_vit()
    frames, boxes = make_clip_frames(n=8, size=(320, 240), box=(120, 90, 40, 32), step=(3, 2))
    write_sequence(str(tmp_path / "seqs" / "square"), frames, boxes)
    out = tmp_path / "v.json"
    proc = subprocess.run([sys.executable, "-m", "edge.bench.engine_timing", "--peer", peer, "--vittrack-model",
                           vittrack_file(), "--sequences", str(tmp_path / "seqs"), "--threads", "1",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["frame_median_ms"] > 0 and len(result["boxes"]["square"]) == 8
    assert result["torch_imported"] is False


def test_bench_rows_for_vittrack_are_opt_in_and_a_bad_file_is_skipped_with_its_reason(tmp_path):
    from edge.bench.rows import runtime_rows

    skipped = {}
    assert not [r for r in runtime_rows(skipped) if "vittrack" in r.name]
    rows = runtime_rows(skipped, vittrack_model=vittrack_file())
    names = [r.name for r in rows if "vittrack" in r.name]
    assert "vittrack (onnxruntime)" in names and "vittrack-rgb (onnxruntime)" in names
    assert ("vittrack (opencv)" in names) == hasattr(cv2, "TrackerVit")
    bad = tmp_path / "v.onnx"
    bad.write_bytes(b"junk")
    skipped = {}
    assert not [r for r in runtime_rows(skipped, vittrack_model=str(bad)) if "vittrack" in r.name]
    assert "not a VitTrack model" in skipped["vittrack"]


# -- OpenCV 5's box rules, measured with networks whose outputs we choose --------------------

def constant_maps_model(path: str, cell, size, offset=(0.0, 0.0)) -> str:
    """A VitTrack-shaped ONNX file whose maps ignore the crops: one score peak at ``cell``
    (0.9 on 0.01), the same size and offset everywhere."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    score = np.full((1, 1, 16, 16), 0.01, np.float32)
    score[0, 0, cell[0], cell[1]] = 0.9
    maps = {"output1": score,
            "output2": np.broadcast_to(np.float32(size)[None, :, None, None], (1, 2, 16, 16)).copy(),
            "output3": np.broadcast_to(np.float32(offset)[None, :, None, None], (1, 2, 16, 16)).copy()}
    # The outputs depend on the inputs (times zero), so that no engine folds the inputs away.
    nodes = [helper.make_node("ReduceMean", ["search"], ["s"], keepdims=1),
             helper.make_node("ReduceMean", ["template"], ["t"], keepdims=1),
             helper.make_node("Add", ["s", "t"], ["st"]), helper.make_node("Mul", ["st", "zero"], ["z"])]
    inits = [numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "zero")]
    for name, value in maps.items():
        inits.append(numpy_helper.from_array(value, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "z"], [name]))
    graph = helper.make_graph(
        nodes, "constant_maps",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in
         (("template", [1, 3, 128, 128]), ("search", [1, 3, 256, 256]))],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape)) for n, v in maps.items()],
        initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path


@pytest.mark.parametrize("cell, size, offset, box", [
    ((8, 8), (0.01, 0.01), (0, 0), (300, 150, 40, 40)),      # below 10 px: widened, corner kept
    ((8, 8), (0.5, 0.05), (0, 0), (300, 150, 40, 40)),       # one side below 10 px
    ((4, 4), (0.2, 0.2), (0, 0), (20, 20, 40, 40)),          # off the top-left: cut, then 10 px
    ((11, 11), (0.2, 0.2), (0.9, 0.9), (580, 300, 40, 40)),  # off the bottom-right: moved back inside
    ((8, 10), (0.01, 0.01), (0, 0), (600, 150, 40, 40)),     # a 10 px box that would cross the edge
    ((0, 0), (0.2, 0.2), (0, 0), (20, 20, 40, 40)),          # the window sinks a corner peak: box held
])
def test_box_rules_match_opencv_at_the_edges(tmp_path, cell, size, offset, box):
    needs_tracker_vit()
    path = constant_maps_model(str(tmp_path / "maps.onnx"), cell, size, offset)
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    theirs, ours = create_peer("vittrack", vittrack_model=path), open_vittrack(path, threads=1)
    theirs.init(frame, box)
    ours.init(frame, box)
    moved = False
    for _ in range(3):
        a, b = theirs.update(frame), ours.update(frame)
        assert b.box == a.box and b.score == pytest.approx(a.score, abs=1e-6)
        moved |= b.box != tuple(float(v) for v in box)
    assert moved == (cell != (0, 0))
