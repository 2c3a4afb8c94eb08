"""On-device reader of handwritten multi-digit numbers (no TensorFlow here)."""

__version__ = "0.1.0"
