"""Offline calibration (camera intrinsics, pixel-to-angle, gimbal alignment, latency, INT8 sets).

Runs once per camera and gimbal before the service goes live; each step writes a file that the
runtime loads and validates. Uses edge.camera and edge.io, never the inference engines.
"""
