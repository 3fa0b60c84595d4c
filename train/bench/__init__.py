"""The PyTorch rows of ``edge-track bench``: the PyTorch baseline, engines built from a checkpoint, FLOPs
per frame and the measured GEMM peak."""
