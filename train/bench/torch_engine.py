"""The PyTorch model behind the runtime's engine interface: the bench baseline and test oracle.

It runs the official-style full forward every frame (both templates re-encoded), as the
released tracker does.
"""

from __future__ import annotations

import torch

from edge.engines.base import EngineOutput
from edge.engines.model_meta import ModelMeta
from train.models.model import MixFormerV2


class TorchEngine:
    def __init__(self, model: MixFormerV2, meta: ModelMeta, name: str = "pytorch-fp32-full") -> None:
        self.model = model.eval()
        self.meta = meta
        self.name = name
        self._templates = None

    def set_templates(self, template, online_template) -> None:
        self._templates = (torch.from_numpy(template), torch.from_numpy(online_template))

    def run(self, search) -> EngineOutput:
        with torch.inference_mode():
            boxes, scores = self.model(*self._templates, torch.from_numpy(search))
        return EngineOutput(boxes.numpy()[0], float(scores[0]))

    def close(self) -> None:
        self._templates = None
