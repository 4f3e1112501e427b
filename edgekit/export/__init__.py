"""Export formats: ``onnx`` (with parity), ``qnn`` (HTP context binaries) and ``tensorrt``
(TensorRT-ready ONNX, op check, build plan, engines where TensorRT and a GPU are present)."""

from pathlib import Path

from edgekit._callable import make_callable
from edgekit.export.config import (
    ExportConfig,
    OnnxExport,
    QnnExport,
    TensorRTExport,
    export_config,
)
from edgekit.export.onnx import ExportResult, export_onnx
from edgekit.export.qnn import QnnExportResult, export_qnn
from edgekit.export.tensorrt import TrtExportResult, export_tensorrt
from edgekit.loader import Source

__all__ = [
    "ExportConfig",
    "ExportResult",
    "OnnxExport",
    "QnnExport",
    "TensorRTExport",
    "export",
    "export_config",
    "export_onnx",
    "export_qnn",
    "export_tensorrt",
]


def export(
    model: str | Path | Source,
    out: str | Path,
    config: ExportConfig | None = None,
    *,
    force: bool = False,
) -> ExportResult | QnnExportResult | TrtExportResult:
    """``edgekit.export(model, out, QnnExport(target="qcs6490"))``, like ``edgekit export``:
    the format's function, with the config's options (default: ONNX with parity)."""
    from edgekit.loader import load

    config = config or OnnxExport()
    source = load(str(model)) if isinstance(model, str | Path) else model
    parity = config.parity
    if isinstance(config, QnnExport):
        return export_qnn(
            source, out, target=config.target, strict=config.strict,
            max_error=config.max_error, force=force, check_parity=parity,
        )  # fmt: skip
    if isinstance(config, TensorRTExport):
        return export_tensorrt(
            source, out, target=config.target, precision=config.precision,
            build=config.build, force=force, check_parity=parity,
        )  # fmt: skip
    return export_onnx(source, out, force=force, check_parity=parity)


make_callable(__name__, export)
