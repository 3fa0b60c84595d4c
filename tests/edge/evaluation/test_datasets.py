"""Sequence readers for OTB, LaSOT and GOT-10k layouts."""

import os

import numpy as np
import pytest

from conftest import make_clip_frames, shared_path, write_sequence
from edge.errors import DatasetError
from edge.evaluation.datasets import find_sequences, read_boxes, read_results


@pytest.mark.parametrize("sep", [",", "\t", " ", ", "])
def test_otb_separators(tmp_path, sep):
    frames, gt = make_clip_frames(4)
    write_sequence(str(tmp_path / "seq"), frames, gt, sep=sep)
    (seq,) = find_sequences(str(tmp_path))
    assert seq.name == "seq" and len(seq) == 4 and np.array_equal(seq.gt, gt) and not seq.absent.any()


def test_lasot_layout_with_absent_flags(tmp_path):
    frames, gt = make_clip_frames(5)
    folder = write_sequence(str(tmp_path / "person" / "person-1"), frames, gt, gt_name="groundtruth.txt")
    with open(os.path.join(folder, "full_occlusion.txt"), "w") as f:
        f.write("0,0,1,0,0\n")
    with open(os.path.join(folder, "out_of_view.txt"), "w") as f:
        f.write("0,0,0,0,1\n")
    (seq,) = find_sequences(str(tmp_path))
    assert seq.name == "person-1" and seq.absent.tolist() == [False, False, True, False, True]


def test_got10k_layout(tmp_path):
    import cv2

    frames, gt = make_clip_frames(3)
    folder = tmp_path / "GOT-10k_Val_000001"
    folder.mkdir()
    for i, fr in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:08d}.jpg"), fr)
    np.savetxt(folder / "groundtruth.txt", gt, delimiter=",", fmt="%g")
    (folder / "absence.label").write_text("0\n1\n0\n")
    (seq,) = find_sequences(str(tmp_path))
    assert len(seq) == 3 and seq.absent.tolist() == [False, True, False]


def test_nan_rows_mark_absent(tmp_path):
    frames, gt = make_clip_frames(3)
    gt[1] = np.nan
    write_sequence(str(tmp_path / "s"), frames, gt)
    (seq,) = find_sequences(str(tmp_path))
    assert seq.absent.tolist() == [False, True, False]


def test_real_sequences_are_read():
    sequences = find_sequences(shared_path("data", "sequences"))
    assert {s.name for s in sequences} == {"Crossing", "MotorRolling", "bag", "wakeboard7", "Surfing06"}
    assert all(len(s.frames) == len(s.gt) for s in sequences)


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="no sequences"):
        find_sequences(str(tmp_path))
    with pytest.raises(DatasetError, match="no such"):
        find_sequences(str(tmp_path / "missing"))
    bad = tmp_path / "b.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(DatasetError, match="b.txt:1"):
        read_boxes(str(bad))
    frames, gt = make_clip_frames(3)
    write_sequence(str(tmp_path / "s"), frames[:2], gt)
    with pytest.raises(DatasetError, match="2 images but 3"):
        find_sequences(str(tmp_path))


def test_result_file_length_must_match(tmp_path):
    frames, gt = make_clip_frames(3)
    (seq,) = find_sequences(write_sequence(str(tmp_path / "s"), frames, gt))
    res = tmp_path / "res"
    res.mkdir()
    np.savetxt(res / "s.txt", gt[:2], delimiter=",")
    with pytest.raises(DatasetError, match="2 boxes for 3 frames"):
        read_results(str(res), seq)
