"""Export formats. ``onnx`` today; TensorRT and QNN plug in beside it."""

from edgekit.export.onnx import ExportResult, export_onnx

FORMATS = {"onnx": export_onnx}

__all__ = ["FORMATS", "ExportResult", "export_onnx"]
