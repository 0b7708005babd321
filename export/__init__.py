"""The export layer: Keras models to TFLite and ONNX, quantized, validated, with the card inside.

Importing it is cheap; TensorFlow and the converters are imported when a conversion runs."""
