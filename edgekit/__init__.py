"""edgekit: train the course's Keras models, export them to TFLite and ONNX, run them on devices.

Importing this package is cheap on purpose: heavy libraries (TensorFlow, onnxruntime,
OpenCV) are imported by the modules that need them, when they need them.
"""

from __future__ import annotations

__version__ = "0.1.0"
