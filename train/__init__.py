"""edge-track's PyTorch side: the MixFormerV2 model, checkpoints and export.

Imports torch; the runtime (`edge/`) never imports this package.
"""
