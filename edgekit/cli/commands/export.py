"""``edgekit export``: ONNX, QNN context binaries or TensorRT-ready ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    ForceOpt,
    InputsOpt,
    ModelArg,
    PickleOpt,
    PluginOpt,
    TimeoutOpt,
    WeightsOpt,
)

if TYPE_CHECKING:
    from edgekit.export import ExportResult, QnnExportResult, TrtExportResult


def export(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact folder to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Export format.")] = "onnx",
    force: ForceOpt = False,
    no_parity: Annotated[
        bool, typer.Option("--no-parity", help="Skip the numerical parity check.")
    ] = False,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="qnn: the Qualcomm target to compile for.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="qnn: fail on any CPU fallback or fidelity miss.")
    ] = False,
    max_error: Annotated[
        float | None, typer.Option("--max-error", help="qnn: whole-tick rel-L2 vs FP32 limit.")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option("--precision", help="tensorrt: fp16 (default), int8 (Q/DQ) or fp32."),
    ] = None,
    build: Annotated[
        bool, typer.Option("--build", help="tensorrt: build the engines (needs TensorRT + GPU).")
    ] = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Export a model: ONNX per network with a parity check, or QNN context binaries."""
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed
    from edgekit.cli.render.progress import shown
    from edgekit.export import export as run_export
    from edgekit.export import export_config

    config = export_config(
        format=fmt,
        parity=False if no_parity else None,
        target=target,
        strict=strict or None,
        max_error=max_error,
        precision=precision,
        build=build or None,
    )
    check_out_dir(out, force)  # fail before loading anything
    with claimed(out):
        with shown("export"):
            source = options.load_source(
                model, weights, inputs, allow_pickle, timeout, allow_plugin
            )
            result = run_export(source, out, config, force=force)
        _show(result, out)


def _show(result: ExportResult | QnnExportResult | TrtExportResult, out: Path) -> None:
    from edgekit.cli.guard import finish
    from edgekit.cli.render.export import print_onnx, print_qnn, print_tensorrt
    from edgekit.export import ExportResult, QnnExportResult

    if isinstance(result, QnnExportResult):
        print_qnn(result)
    elif isinstance(result, ExportResult):
        print_onnx(result, out)
    else:
        print_tensorrt(result)
    finish(result)
