"""ANN twin → ONNX (checked in onnxruntime) and its MAC count read from the file alone.
"""
