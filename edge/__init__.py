"""edge-track runtime: MixFormerV2 tracking on edge devices, without torch.

The whole loop in five lines::

    from edge.engines import open_engine
    from edge.trackers.mixformer import MixFormerTracker

    tracker = MixFormerTracker(open_engine("model.onnx"))
    tracker.init(first_frame_rgb, (x, y, w, h))
    result = tracker.update(next_frame_rgb)     # TrackResult(box, score, state, ...)

Frames are (H, W, 3) uint8 **RGB** arrays; boxes are (x, y, w, h) in pixels, top-left corner.
"""

__version__ = "0.1.0"
