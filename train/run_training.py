"""Entry point for torchrun: ``torchrun --nproc_per_node N -m train.run_training CONFIG``."""

from __future__ import annotations

import argparse
import sys

from edge.errors import EdgeTrackError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.run_training")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-steps", type=int, default=0)
    args = p.parse_args(argv)
    from train.config import load_train_config
    from train.trainer import train

    try:
        train(load_train_config(args.config), resume=args.resume, max_steps=args.max_steps or None)
    except EdgeTrackError as exc:
        print(f"edge-track: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
