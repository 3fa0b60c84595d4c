"""Gimbal and box-stream protocols (bytes only, in protocols/) and the outputs that send them."""
