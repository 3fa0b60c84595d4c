"""The picture a person sees: a frame with the tracked box, its score and its state drawn on it."""

from __future__ import annotations

import cv2

from edge.trackers.state import TrackResult, TrackState


def draw(frame_rgb, result: TrackResult | None = None):
    """A BGR copy of the (H, W, 3) RGB frame with the box, score and state drawn; with no result
    (nothing tracked yet) the plain BGR copy."""
    image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    if result is None:
        return image
    x, y, w, h = (int(round(v)) for v in result.box)
    color = (0, 200, 0) if result.state is TrackState.TRACKING else (0, 0, 255)
    cv2.rectangle(image, (x, y), (x + w, y + h), color, 2)
    cv2.putText(image, f"{result.state.value} {result.score:.2f}", (x, max(12, y - 5)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return image
