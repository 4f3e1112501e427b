"""Typed settings of ``edgekit export``: one class per format, told apart by ``format``.

``ExportConfig`` is their union (default onnx), shared by the CLI, ``edgekit.export(...)`` and
a recipe's export stage.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError

from edgekit.config import VerbConfig, first_error
from edgekit.errors import BadInputError


class OnnxExport(VerbConfig):
    """ONNX per network, with parity vs the PyTorch model per network and over whole ticks."""

    stage: Literal["export"] = "export"
    format: Literal["onnx"] = "onnx"
    parity: bool = True


class QnnExport(VerbConfig):
    """QNN context binaries of a model quantized for a Qualcomm target (HTP).

    ``strict``: any CPU fallback or a fidelity miss fails; ``max_error``: whole-tick rel-L2 vs
    FP32 limit (a gate)."""

    stage: Literal["export"] = "export"
    format: Literal["qnn"] = "qnn"
    target: str | None = None
    strict: bool = False
    max_error: float | None = Field(default=None, gt=0)
    parity: bool = True


class TensorRTExport(VerbConfig):
    """TensorRT-ready ONNX for a Jetson, its op check and build plan; ``build`` makes the
    engines (needs TensorRT and an NVIDIA GPU)."""

    stage: Literal["export"] = "export"
    format: Literal["tensorrt"] = "tensorrt"
    target: str | None = None
    precision: Literal["fp16", "int8", "fp32"] = "fp16"
    build: bool = False
    parity: bool = True


def _format(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("format", "onnx"))
    return getattr(value, "format", None)


ExportConfig = Annotated[
    Annotated[OnnxExport, Tag("onnx")]
    | Annotated[QnnExport, Tag("qnn")]
    | Annotated[TensorRTExport, Tag("tensorrt")],
    Discriminator(_format),
]
FORMATS = ("onnx", "qnn", "tensorrt")

_ADAPTER: TypeAdapter[OnnxExport | QnnExport | TensorRTExport] = TypeAdapter(ExportConfig)


def export_config(**options: Any) -> OnnxExport | QnnExport | TensorRTExport:
    """The class ``format`` names, from the given options (None: default); an option the
    format does not have is refused, naming it."""
    given = {k: v for k, v in options.items() if v is not None}
    fmt = given.get("format", "onnx")
    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    try:
        return _ADAPTER.validate_python(given)
    except ValidationError as e:
        line = first_error(e, option_style=True)
        opt, _, why = line.partition(":")
        if why.strip() == "unknown key":
            line = f"{opt} does not apply to --format {fmt}"
        raise BadInputError(line) from None
