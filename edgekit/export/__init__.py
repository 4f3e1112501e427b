"""Export formats. ``onnx`` today; TensorRT and QNN plug in beside it."""

from pathlib import Path

from edgekit._callable import make_callable
from edgekit.export.onnx import ExportResult, export_onnx
from edgekit.loader import Source

FORMATS = {"onnx": export_onnx}

__all__ = ["FORMATS", "ExportResult", "export", "export_onnx"]


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
