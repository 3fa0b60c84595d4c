"""What leaves training: ONNX and TFLite exports, INT8/FP16 copies, and the INT8 inputs (the network
inputs the activation ranges are measured on, recorded from the tracker or cut from a source)."""
