"""Distillation: the teachers, the actors that turn a batch into losses, and shrinking a trained model."""
