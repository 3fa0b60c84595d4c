"""Interpolate two checkpoints of one network: ``(1 - alpha) * A + alpha * B`` (WiSE-FT).

A finetune often gains on what it was trained for and loses some of what its starting point knew;
the straight line between the two weight sets keeps part of each (Wortsman et al., *Robust
fine-tuning of zero-shot models*, CVPR 2022). ``alpha`` is chosen on the validation split.

A may have another search grid than B at the same pixel scale (the bundled ``nanostem`` weights and
a ``nanostem224`` finetune of them): it is laid out for B's variant first (train/weights/regrid.py). The
result is a training checkpoint of B's variant that ``edge-track export`` reads.

    python -m train.weights.average A.pth.tar B.pth.tar --alpha 0.3 --output OUT.pth.tar
"""

from __future__ import annotations

import argparse
import sys

import torch

from edge.errors import ConfigError, EdgeTrackError
from train.models.presets import Architecture
from train.weights.checkpoint import load_model, save_checkpoint
from train.weights.regrid import load_regridded


def average(a_path: str, b_path: str, alpha: float) -> tuple[dict[str, torch.Tensor], Architecture]:
    """The interpolated state dict, laid out for B's variant, and that variant."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--alpha must be within [0, 1], got {alpha:g}")
    model_b, _ = load_model(b_path)
    model_a, _ = load_regridded(a_path, model_b.cfg.name)
    a, b = model_a.state_dict(), model_b.state_dict()
    out = {}
    for key, vb in b.items():
        # Integer buffers (none in this network today) are taken from B, the run being kept.
        out[key] = ((1.0 - alpha) * a[key].float() + alpha * vb.float()).to(vb.dtype) if vb.is_floating_point() else vb
    return out, model_b.cfg


def main(argv=None) -> int:
    from train.config import TrainConfig
    from train.models.model import build_model

    p = argparse.ArgumentParser(prog="python -m train.weights.average", description=__doc__.splitlines()[0])
    p.add_argument("a", metavar="A.pth.tar", help="the starting weights (alpha 0)")
    p.add_argument("b", metavar="B.pth.tar", help="the finetuned weights (alpha 1); the result has its variant")
    p.add_argument("--alpha", type=float, required=True, help="weight of B, within [0, 1]")
    p.add_argument("--output", "-o", required=True, metavar="OUT.pth.tar")
    args = p.parse_args(argv)
    try:
        state, cfg = average(args.a, args.b, args.alpha)
        model = build_model(cfg)
        model.load_state_dict(state, strict=True)
        save_checkpoint(args.output, model, 0, TrainConfig(stage="frozen_stem", variant=cfg.name))
    except EdgeTrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {1 - args.alpha:g} x {args.a} + {args.alpha:g} x {args.b} ({cfg.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
