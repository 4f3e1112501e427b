"""``edgekit export``: ONNX, QNN context binaries or TensorRT-ready ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    ForceOpt,
    InputsOpt,
    JsonReportOpt,
    ModelArg,
    OutOpt,
    PickleOpt,
    PluginOpt,
    QuietOpt,
    TimeoutOpt,
    WeightsOpt,
    choice_option,
)

if TYPE_CHECKING:
    from edgekit.export import ExportResult, QnnExportResult, TrtExportResult


def export(
    model: ModelArg,
    out: OutOpt,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar=options.metavar(options.FORMATS),
            help="ONNX per network, QNN context binaries (of a model quantized for a Qualcomm "
            "target), or TensorRT-ready ONNX for a Jetson.",
            autocompletion=options.completer(options.FORMATS),
        ),
    ] = "onnx",
    force: ForceOpt = False,
    no_parity: Annotated[
        bool, typer.Option("--no-parity", help="Skip the numerical parity check.")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            metavar="TARGET",
            help="qnn: the Qualcomm target to compile for; tensorrt: the Jetson "
            f"({', '.join(options.TARGET_NAMES)}).",
            autocompletion=options.completer(options.TARGET_NAMES),
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="qnn: fail on any CPU fallback or fidelity miss.")
    ] = False,
    max_error: Annotated[
        float | None, typer.Option("--max-error", help="qnn: whole-tick rel-L2 vs FP32 limit.")
    ] = None,
    precision: Annotated[
        str | None,
        choice_option(
            "--precision",
            options.TENSORRT_PRECISIONS,
            "tensorrt: FP16, INT8 (Q/DQ of a quantized model) or FP32. Default: fp16.",
        ),
    ] = None,
    build: Annotated[
        bool, typer.Option("--build", help="tensorrt: build the engines (needs TensorRT + GPU).")
    ] = False,
    json_out: JsonReportOpt = None,
    quiet: QuietOpt = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Export a model: ONNX, QNN context binaries or TensorRT-ready ONNX.

    ONNX is checked against the PyTorch model, per network and over whole ticks; an artifact
    folder is written with its manifest.
    """
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed, output
    from edgekit.cli.render.progress import shown
    from edgekit.export import export as run_export
    from edgekit.export import export_config
    from edgekit.targets import get_target

    output(json_out, quiet)
    config = export_config(
        format=fmt,
        parity=False if no_parity else None,
        target=target,
        strict=strict or None,
        max_error=max_error,
        precision=precision,
        build=build or None,
    )
    if target is not None:
        get_target(target)  # unknown target: fail before loading anything
    check_out_dir(out, force)  # fail before loading anything
    with claimed(out, json_out):
        with shown("export"):
            source = options.load_source(
                model, weights, inputs, allow_pickle, timeout, allow_plugin
            )
            result = run_export(source, out, config, force=force)
        _show(result, out, json_out)


def _show(
    result: ExportResult | QnnExportResult | TrtExportResult, out: Path, json_out: str | None
) -> None:
    from edgekit.cli.guard import finish
    from edgekit.cli.render.export import print_onnx, print_qnn, print_tensorrt
    from edgekit.export import ExportResult, QnnExportResult

    if isinstance(result, QnnExportResult):
        print_qnn(result)
    elif isinstance(result, ExportResult):
        print_onnx(result, out)
    else:
        print_tensorrt(result)
    finish(result, json_out, out)
