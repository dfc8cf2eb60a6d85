"""The reading model: trained here (`qa train-reader`), shipped int8 ONNX, run in every answer."""
