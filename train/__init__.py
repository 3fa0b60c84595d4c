"""edge-track's PyTorch side: training (``trainer``, ``config``, ``run_training``) and the commands that
need PyTorch (``commands``), with one folder per job: models, weights, distill, data, export, bench,
measure.

Imports torch; the runtime (`edge/`) never imports this package.
"""
