"""The MixFormerV2 network: its layers, its named variants (presets) and the stems it can start from."""
