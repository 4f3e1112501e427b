"""Export formats: ``onnx`` (with parity), ``qnn`` (HTP context binaries) and ``tensorrt``
(TensorRT-ready ONNX, op check, build plan, engines where TensorRT and a GPU are present)."""

from pathlib import Path
from typing import Any

from edgekit._callable import make_callable
from edgekit.export.onnx import ExportResult, export_onnx
from edgekit.export.qnn import export_qnn
from edgekit.export.tensorrt import export_tensorrt
from edgekit.loader import Source

FORMATS: dict[str, Any] = {"onnx": export_onnx, "qnn": export_qnn, "tensorrt": export_tensorrt}

__all__ = ["FORMATS", "ExportResult", "export", "export_onnx", "export_qnn", "export_tensorrt"]


def export(
    model: str | Source,
    out: str | Path,
    *,
    format: str = "onnx",
    force: bool = False,
    check_parity: bool = True,
) -> ExportResult:
    """``edgekit.export(model, out)``: export with a parity check, like ``edgekit export``."""
    from edgekit.errors import BadInputError
    from edgekit.loader import load

    if format not in FORMATS:
        raise BadInputError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
    source = load(model) if isinstance(model, str) else model
    return FORMATS[format](source, out, force=force, check_parity=check_parity)


make_callable(__name__, export)
