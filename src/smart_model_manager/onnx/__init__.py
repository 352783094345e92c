"""ONNX export, int8 recipes and the quality gate with its samples. Heavy imports inside functions. Internal:
see docs/design.md and docs/onnx.md."""
