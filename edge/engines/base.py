"""The one interface every inference engine implements.

The tracker hands the engine its two templates when they change and one search crop per frame.
Splitting the calls this way lets an engine that caches the templates' keys/values (the exact
MixFormerV2 shortcut) do that work only on template updates, behind the same two verbs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edge.engines.model_meta import ModelMeta


@dataclass(frozen=True)
class EngineOutput:
    """One frame's network output.

    box_cxcywh: (4,) float32, (cx, cy, w, h) normalised to the search crop.
    score_logit: the confidence logit (apply a sigmoid for a probability).
    """

    box_cxcywh: np.ndarray
    score_logit: float


@runtime_checkable
class Engine(Protocol):
    meta: ModelMeta
    name: str

    def set_templates(self, template: np.ndarray, online_template: np.ndarray) -> None:
        """Both (1, 3, T, T) float32, normalised. Called at init and on each template update."""

    def run(self, search: np.ndarray) -> EngineOutput:
        """search: (1, 3, S, S) float32, normalised."""

    def close(self) -> None:
        """Release the engine; safe to call twice."""
