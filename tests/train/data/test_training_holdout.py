"""The validation split never reaches training: a source's held-out sequences are left out by every
path that reads training videos, and every committed config holds out what the split shares."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from conftest import REPO, SHARED, make_clip_frames, shared_path, write_sequence

pytest.importorskip("torch")


def _corpus(root, names):
    frames, boxes = make_clip_frames(n=4)
    for name in names:
        write_sequence(os.path.join(root, name), frames, boxes)
    return str(root)


def test_load_videos_leaves_out_the_excluded_sequences(tmp_path):
    from train.data.sources import load_videos

    root = _corpus(tmp_path, ["kept", "held_out", "also_kept"])
    names = sorted(v.name for v in load_videos(root, "otb", exclude=["held_out"]))
    assert names == ["also_kept", "kept"]
    assert len(load_videos(root, "otb")) == 3


def test_an_excluded_name_that_is_not_there_is_an_error(tmp_path):
    """A typo in exclude would silently put a validation sequence back into training."""
    from edge.errors import DatasetError
    from train.data.sources import load_videos

    root = _corpus(tmp_path, ["kept", "held_out"])
    with pytest.raises(DatasetError, match="excluded sequence 'held_ot' is not there"):
        load_videos(root, "otb", exclude=["held_ot"])


def test_the_pair_dataset_never_samples_an_excluded_video(tmp_path):
    """The dense-to-sparse path (pairs for a teacher) read every video, exclude or not."""
    from train.config import load_train_config
    from train.models.model import build_model
    from train.models.presets import get_preset
    from train.trainer import _pair_dataset

    root = _corpus(tmp_path / "corpus", ["kept", "held_out"])
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "stage": "distill", "variant": "tiny", "output": str(tmp_path / "out"),
        "data": {"sources": [{"path": root, "kind": "otb", "exclude": ["held_out"]}], "samples_per_epoch": 8},
        "teacher": {"kind": "nanotrack", "path": str(tmp_path)}}))
    cfg = load_train_config(str(cfg_path))
    ds = _pair_dataset(cfg, build_model(get_preset("tiny"), seed=0), 0, keep_rgb=False)
    assert [v.name for videos, _ in ds.sets for v in videos] == ["kept"]


def _configs():
    return sorted(glob.glob(os.path.join(REPO, "train", "**", "*.yaml"), recursive=True))


@pytest.mark.parametrize("path", _configs(), ids=lambda p: os.path.relpath(p, REPO))
def test_every_config_holds_out_what_the_validation_split_shares(path):
    validation = shared_path("data", "validation")
    split = {n for n in os.listdir(validation) if os.path.isdir(os.path.join(validation, n))}
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    sources = (doc.get("data") or {}).get("sources") or []
    data = os.path.join(os.path.realpath(SHARED), "data")
    for src in sources:
        folder = os.path.realpath(os.path.join(REPO, str(src.get("path", ""))))   # configs run from the repo root
        if not os.path.isdir(folder) or os.path.dirname(folder) != data:
            continue                            # a user's folder, a video file: not the shared corpora
        shared = split & set(os.listdir(folder))
        assert shared <= set(src.get("exclude") or ()), (path, sorted(shared - set(src.get("exclude") or ())))


def test_the_holdout_check_sees_the_configs_that_read_the_shared_corpora():
    """The check above is not empty: the committed recipes do train on ../shared/data/train."""
    folder = os.path.realpath(shared_path("data", "train"))
    readers = []
    for path in _configs():
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for src in (doc.get("data") or {}).get("sources") or []:
            if os.path.realpath(os.path.join(REPO, str(src.get("path", "")))) == folder:
                readers.append(path)
    assert len(readers) >= 2
