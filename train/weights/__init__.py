"""Weight files: reading checkpoints, laying weights out for another search grid, interpolating two
checkpoints, and recovering a checkpoint from an exported model."""
