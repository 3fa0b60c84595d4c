"""OpenCV's trackers as ``edge.trackers.contract.Tracker``s (declaring no capabilities).

KCF and CSRT come with opencv-contrib (``pip install 'edge-track[peers]'``); NanoTrack is in
the main OpenCV build but needs its two ONNX files (backbone and head). ``nanotrack-upstream``
is the same kind of files (V2 or V3) run by the authors' own tracking loop on onnxruntime
(``edge.trackers.nanotrack``), which is what the peer's published numbers come from. ``vittrack`` is
OpenCV's ``cv2.TrackerVit`` on VitTrack's ONNX file (main OpenCV 4.9+), and ``vittrack-onnxruntime``
the runtime's own loop on the same file (``edge.trackers.vittrack``, OpenCV's conventions on onnxruntime);
``vittrack-rgb`` is that loop feeding the network RGB (OpenCV feeds it BGR with RGB's mean and
std); it scores higher on the validation split.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from edge.camera.opencv import quiet_opencv_log
from edge.errors import ConfigError
from edge.trackers.contract import Capabilities, TrackerInfo
from edge.trackers.state import TrackResult, TrackState

PEERS = ("kcf", "csrt", "nanotrack", "nanotrack-upstream", "vittrack", "vittrack-onnxruntime", "vittrack-rgb")
NANOTRACK_FILES = ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")


class OpenCVPeer:
    """Wraps a cv2.Tracker; frames come in RGB like everywhere else in edge-track. Its search
    region is OpenCV's own: nothing to widen."""

    capabilities = Capabilities()

    def __init__(self, name: str, factory) -> None:
        self.name = name
        self._factory = factory
        self._box = None

    @property
    def info(self) -> TrackerInfo:
        return TrackerInfo(f"OpenCV {self.name}", self.name, "opencv")

    @property
    def box(self):
        return self._box

    def init(self, frame: np.ndarray, box_xywh) -> TrackResult:
        self._tracker = self._factory()
        self._box = tuple(float(v) for v in box_xywh)
        self._frame_id = 0
        # OpenCV trackers take integer boxes.
        self._tracker.init(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in self._box))
        return TrackResult(box=self._box, score=1.0, state=TrackState.TRACKING, frame_id=0)

    def update(self, frame: np.ndarray) -> TrackResult:
        self._frame_id += 1
        ok, box = self._tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        score = float(self._tracker.getTrackingScore()) if hasattr(self._tracker, "getTrackingScore") else float(ok)
        if ok:
            self._box = tuple(float(v) for v in box)
        state = TrackState.TRACKING if ok else TrackState.LOST
        return TrackResult(box=self._box, score=score, state=state, frame_id=self._frame_id)


def create_peer(name: str, nanotrack_dir: str | None = None, threads: int | None = None,
                vittrack_model: str | None = None):
    """A peer tracker by name: kcf, csrt, nanotrack or nanotrack-upstream (both need
    ``nanotrack_dir``), vittrack, vittrack-onnxruntime or vittrack-rgb (``vittrack_model``);
    ``threads`` applies to the onnxruntime ones."""
    name = name.lower()
    if name in ("vittrack", "vittrack-onnxruntime", "vittrack-rgb"):
        return _vittrack(name, vittrack_model, threads)
    if name == "nanotrack-upstream":
        from edge.trackers.nanotrack import open_nanotrack

        if not nanotrack_dir:
            raise ConfigError("nanotrack-upstream needs --nanotrack-dir, a folder with NanoTrack's "
                              "*backbone*.onnx and *head*.onnx (V2 or V3)")
        return open_nanotrack(nanotrack_dir, threads=threads)
    if name in ("kcf", "csrt"):
        cls_name = "TrackerKCF" if name == "kcf" else "TrackerCSRT"
        cls = getattr(cv2, cls_name, None)
        if cls is None:
            raise ConfigError(f"{name} needs opencv-contrib: pip install 'edge-track[peers]'")
        return OpenCVPeer(name, cls.create)
    if name == "nanotrack":
        if not nanotrack_dir:
            raise ConfigError("nanotrack needs --nanotrack-dir, a folder with "
                              + " and ".join(NANOTRACK_FILES))
        paths = [os.path.join(nanotrack_dir, f) for f in NANOTRACK_FILES]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise ConfigError(f"NanoTrack model file not found: {missing[0]}")
        quiet_opencv_log()   # its DNN engine warns once per tracker about unsupported targets
        params = cv2.TrackerNano_Params()
        params.backbone, params.neckhead = paths

        def factory():
            return cv2.TrackerNano.create(params)

        return OpenCVPeer(name, factory)
    raise ConfigError(f"unknown tracker '{name}' (valid: mixformer, {', '.join(PEERS)})")


def _vittrack(name: str, path: str | None, threads: int | None):
    from edge.trackers.vittrack import VitTracker, VitTrackModel

    if not path:
        raise ConfigError(f"{name} needs --vittrack-model, VitTrack's ONNX file (vitTracker.onnx from "
                          "OpenCV's model zoo)")
    model = VitTrackModel(path, threads)    # one line naming what is wrong when the file is not VitTrack's
    if name == "vittrack-onnxruntime":
        return VitTracker(model)
    if name == "vittrack-rgb":
        return VitTracker(model, input_order="RGB")
    model.close()
    if not hasattr(cv2, "TrackerVit"):
        raise ConfigError(f"vittrack needs OpenCV 4.9 or later (cv2.TrackerVit); this is OpenCV {cv2.__version__}")
    quiet_opencv_log()
    params = cv2.TrackerVit_Params()
    params.net = path

    def factory():
        return cv2.TrackerVit.create(params)

    return OpenCVPeer(name, factory)
