"""``edge-track bench``: trackers side by side on the same frames, each in its own runtime-only process.

``rows`` lists what a runtime install can time (the bundled trackers, model files, NanoTrack
folders, OpenCV's peers); ``session`` runs them in rounds at each thread count, one
``engine_timing`` process per row (one engine or peer timed on the clips); ``op_profile`` breaks an
onnxruntime run down by operator; ``report`` prints the table. Rows that need PyTorch (a baseline,
engines built from a checkpoint) are added by a plug-in (train/bench/pytorch_rows.py) through
``session.Contribution``; nothing here imports torch.
"""
