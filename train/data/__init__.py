"""Training data: dataset readers, the pair sampler, crops and augmentation."""
