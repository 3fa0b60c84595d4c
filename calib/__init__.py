"""Offline calibration of the camera and the gimbal (intrinsics, pixel-to-angle, gimbal alignment, latency,
controller gains). The ``calibrate int8`` step only records INT8 inputs for ``quantize``: that recorder lives
with quantisation (train/export/input_recorder.py, no torch).

Runs once per camera and gimbal before the service goes live; each step writes a file that the
runtime loads and validates. Uses edge.camera and edge.io, never the inference engines.
"""
