"""The rows a runtime-only install can time: bundled trackers, model files, NanoTrack folders, OpenCV peers.

Each row is a ``Row``: how to get its model file (``build``) and how the worker process
(``python -m edge.bench.engine_timing``) opens it. None of them needs PyTorch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from edge.errors import EdgeTrackError

# The peer every "frame / NanoTrack" ratio is taken against: rows whose name starts with it.
NANOTRACK_PEER = "nanotrack (opencv)"


@dataclass
class Row:
    """One row of the table: how to build its model file and how the worker opens it."""

    name: str
    precision: str
    cached: bool
    build: object                      # callable(workdir) -> model path (None for a peer)
    engine: str = "onnxruntime"
    worker_args: list[str] = field(default_factory=list)
    # Not built from the benched checkpoint: no IoU/AUC delta against its PyTorch boxes.
    independent: bool = False
    preset: str | None = None          # the network's preset name, for a FLOP ceiling where one is known
    peer: str | None = None            # a peer tracker instead of a model file


def find_nanotrack_dir() -> str | None:
    """NanoTrack's ONNX files for OpenCV: $EDGE_TRACK_NANOTRACK_DIR, else ../shared/models/opencv
    beside the repository."""
    from edge.evaluation.peers import NANOTRACK_FILES

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    beside = os.path.join(os.path.dirname(repo), "shared", "models", "opencv")
    for folder in (os.environ.get("EDGE_TRACK_NANOTRACK_DIR"), beside):
        if folder and all(os.path.isfile(os.path.join(folder, f)) for f in NANOTRACK_FILES):
            return folder
    return None


def model_row(path: str, label: str, independent: bool = True) -> Row:
    """A model file's row, named ``LABEL-PRECISION (FILE)``; its precision and preset from its metadata."""
    from edge.engines import engine_for

    precision, preset = "int8", None
    if engine_for(path) == "onnxruntime":
        from edge.engines.onnx import open_session, read_meta

        meta = read_meta(open_session(path), path)
        precision, preset = meta.precision, meta.preset
    return Row(f"{label}-{precision} ({os.path.basename(path)})", precision, True, build=lambda work, p=path: p,
               engine=engine_for(path), independent=independent, preset=preset)


def nanotrack_row(folder: str, label: str) -> Row:
    """NanoTrack's own loop (``edge.trackers.nanotrack``) on onnxruntime, on the two files in ``folder``."""
    return Row(f"{label} (onnxruntime)", "fp32", False, build=lambda work, f=folder: f, engine="onnxruntime",
               worker_args=["--nanotrack-dir", folder], independent=True, peer="nanotrack-upstream")


def bundled_rows(skipped: dict) -> list[Row]:
    """A row for every bundled tracker, the default (by the catalog's rule) marked."""
    from edge.trackers.catalog import load_catalog

    catalog = load_catalog()
    default = catalog.default()
    rows = []
    for entry in catalog.entries:
        if not entry.installed:
            skipped[entry.name] = "not in this install"
            continue
        label = f"{'default' if entry is default else 'bundled'} {entry.name}"
        rows.append(nanotrack_row(entry.path, label) if entry.family == "nanotrack" else model_row(entry.path, label))
    return rows


def chosen_model_row(model: str) -> Row:
    """``--model NAME|PATH``: a bundled tracker's name or a file / NanoTrack folder, as the ``default-model`` row."""
    from edge.trackers.catalog import resolve

    path, entry = resolve(model)
    if (entry is not None and entry.family == "nanotrack") or os.path.isdir(path):
        return nanotrack_row(path, "default-model nanotrack")
    return model_row(path, "default-model")


def opencv_nanotrack_rows(nanotrack_dir: str | None, skipped: dict) -> list[Row]:
    """OpenCV's ``cv2.TrackerNano`` (main OpenCV 4.7+) on NanoTrack's files: the peer every ratio is taken against."""
    import cv2

    if not hasattr(cv2, "TrackerNano"):
        skipped["nanotrack"] = f"OpenCV {cv2.__version__} has no cv2.TrackerNano (4.7 or later)"
        return []
    if nanotrack_dir is None:
        skipped["nanotrack"] = ("OpenCV NanoTrack's two files (nanotrack_backbone_sim.onnx, nanotrack_head_sim.onnx, "
                                "from OpenCV's model zoo) not found: give --nanotrack-dir DIR for the row every "
                                "'frame / NanoTrack' ratio is taken against")
        return []
    return [Row(NANOTRACK_PEER, "fp32", False, build=lambda work, f=nanotrack_dir: f, engine="opencv",
                worker_args=["--nanotrack-dir", nanotrack_dir], independent=True, peer="nanotrack")]


def upstream_nanotrack_rows(folders, skipped: dict) -> list[Row]:
    """NanoTrack as its authors run it, on each folder (V2 or V3). Named so that OpenCV's row
    stays the one every ratio is taken against."""
    from edge.trackers.nanotrack_model import NanoTrackModel

    rows = []
    for folder in folders:
        try:
            version = NanoTrackModel(folder).settings.version
        except EdgeTrackError as exc:
            skipped[f"upstream nanotrack ({folder})"] = str(exc)
            continue
        rows.append(nanotrack_row(folder, f"upstream nanotrack-{version}"))
    return rows


def vittrack_rows(path: str, skipped: dict) -> list[Row]:
    """VitTrack on its ONNX file: OpenCV's ``cv2.TrackerVit`` (4.9+) and the runtime's own loop (BGR
    as OpenCV feeds it, and RGB).

    The seam for the VitTrack peer (``edge.trackers.vittrack``, the worker's ``--peer vittrack`` and
    ``--vittrack-model``): until that is in this install, the rows are skipped with the reason."""
    import cv2

    try:
        from edge.trackers.vittrack import VitTrackModel
    except ImportError:
        skipped["vittrack"] = "this install has no VitTrack peer (edge.trackers.vittrack)"
        return []
    try:
        VitTrackModel(path).close()
    except EdgeTrackError as exc:
        skipped["vittrack"] = str(exc)
        return []
    rows = [Row(name, "fp32", False, build=lambda work: None, engine="onnxruntime",
                worker_args=["--vittrack-model", path], independent=True, peer=peer)
            for name, peer in (("vittrack (onnxruntime)", "vittrack-onnxruntime"),
                               ("vittrack-rgb (onnxruntime)", "vittrack-rgb"))]
    if hasattr(cv2, "TrackerVit"):
        rows.insert(0, Row("vittrack (opencv)", "fp32", False, build=lambda work: None, engine="opencv",
                           worker_args=["--vittrack-model", path], independent=True, peer="vittrack"))
    else:
        skipped["vittrack (opencv)"] = f"OpenCV {cv2.__version__} has no cv2.TrackerVit (4.9 or later)"
    return rows


def runtime_rows(skipped: dict, *, model: str | None = None, nanotrack_dir: str | None = None,
                 upstream_nanotrack=(), vittrack_model: str | None = None) -> list[Row]:
    """Every row a runtime install can time: each bundled tracker (or ``model`` alone, when given),
    OpenCV NanoTrack (files from ``nanotrack_dir``, else ``find_nanotrack_dir``), NanoTrack's own
    loop on each ``upstream_nanotrack`` folder, and VitTrack on ``vittrack_model``. What cannot
    run here goes into ``skipped`` with its reason."""
    rows = [chosen_model_row(model)] if model else bundled_rows(skipped)
    rows += opencv_nanotrack_rows(nanotrack_dir or find_nanotrack_dir(), skipped)
    rows += upstream_nanotrack_rows(upstream_nanotrack, skipped)
    if vittrack_model:
        rows += vittrack_rows(vittrack_model, skipped)
    return rows


def extra_model_rows(paths) -> list[Row]:
    """Ready-made model files (``--extra-model``, e.g. a QAT export) named ``ENGINE-PRECISION (FILE)``;
    compared with the PyTorch reference when a plug-in measures one."""
    from edge.engines import engine_for

    return [model_row(p, engine_for(p), independent=False) for p in paths]
