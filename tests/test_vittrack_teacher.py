"""VitTrack in PyTorch (train/vittrack.py), its weights read from the ONNX file, against
onnxruntime on the crops the runtime's own loop makes on real validation frames."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edge.camera.folder import read_rgb  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from edge.evaluation.datasets import find_sequences  # noqa: E402
from edge.vittrack import VitTracker, VitTrackModel  # noqa: E402
from train.vittrack import BLOCKS, load_vittrack  # noqa: E402


class Recording(VitTrackModel):
    """The onnxruntime model, keeping every (template, search) pair it was given."""

    def __init__(self, path: str) -> None:
        super().__init__(path, threads=1)
        self.pairs = []

    def run(self, template, search):
        self.pairs.append((template, search))
        return super().run(template, search)


def real_pairs(path: str, per_sequence: int = 3, sequences: int = 4):
    model = Recording(path)
    for seq in find_sequences(shared_path("data", "validation"))[:sequences]:
        tracker = VitTracker(model)
        tracker.init(read_rgb(seq.frames[0]), seq.gt[0])
        for i in range(1, per_sequence + 1):
            tracker.update(read_rgb(seq.frames[i * (len(seq) - 1) // per_sequence]))
    return model


def test_outputs_match_onnxruntime_on_real_crops():
    path = shared_path("models", "vittrack", "vitTracker.onnx")
    onnx_model = real_pairs(path)
    teacher = load_vittrack(path)
    template = torch.from_numpy(np.concatenate([t for t, _ in onnx_model.pairs]))
    search = torch.from_numpy(np.concatenate([s for _, s in onnx_model.pairs]))
    with torch.no_grad():
        out = teacher(template, search)
    expected = [np.concatenate(maps) for maps in zip(*(VitTrackModel.run(onnx_model, t, s)
                                                         for t, s in onnx_model.pairs))]
    for name, got, want in zip(("score", "size", "offset"), (out.score, out.size, out.offset), expected):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-4, err_msg=name)
    assert out.score.max() > 0.5          # real targets, not blank crops: the maps have peaks
    assert len(out.features) == BLOCKS and all(f.shape == (len(template), 320, 48) for f in out.features)
    # Deep-to-shallow mimics these: each block really changes the tokens.
    assert all(not torch.allclose(a, b) for a, b in zip(out.features, out.features[1:]))


def test_a_file_that_is_not_vittrack_is_refused(tmp_path):
    nano = shared_path("models", "opencv", "nanotrack_backbone_sim.onnx")
    with pytest.raises(ModelError, match="not VitTrack"):
        load_vittrack(nano)
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelError, match="not a readable ONNX file"):
        load_vittrack(str(bad))
