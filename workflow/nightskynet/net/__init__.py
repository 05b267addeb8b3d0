"""The network: its PyTorch modules and the model file (weights, settings and the ONNX graph), calibration, and the
inference engines (ONNX Runtime on a CPU, PyTorch on CUDA). Its typed settings (``core.architecture``) lie in core."""
