"""``edgekit quantize``: INT8 / INT4 / mixed for a target (:mod:`edgekit.quantize`)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    ForceOpt,
    InputsOpt,
    JsonReportOpt,
    LatencyTicksOpt,
    ModelArg,
    OutOpt,
    PickleOpt,
    PluginOpt,
    QuietOpt,
    TargetOpt,
    TimeoutOpt,
    WeightsOpt,
    choice_option,
)

CALIB_REQUIRED = (
    "--calib is required: a calibration .npz (see calib_data/README.md), or "
    "`--calib synthetic` to calibrate on generated observations explicitly"
)


def quantize(
    model: ModelArg,
    out: OutOpt,
    calib: Annotated[
        str | None,
        typer.Option(
            "--calib",
            metavar="FILE|DIR|synthetic",
            help="Calibration .npz or folder (see calib_data/README.md), "
            "or 'synthetic' to calibrate on generated observations explicitly.",
        ),
    ] = None,
    precision: Annotated[
        str,
        choice_option(
            "--precision",
            options.QUANTIZE_PRECISIONS,
            "INT8 weights and activations, INT4 weights only, or INT8 with the most sensitive "
            "layers kept in float (needs --max-error).",
        ),
    ] = "int8",
    target: TargetOpt = "cpu",
    max_error: Annotated[
        str | None,
        typer.Option(
            "--max-error",
            metavar="E|METRIC=E",
            help=f"Fidelity gate vs FP32 (exit 1, nothing written): {options.BUDGET_HELP}.",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str | None,
        choice_option(
            "--method",
            options.METHODS,
            "int8/mixed: how activation ranges are calibrated. Default: minmax.",
        ),
    ] = None,
    block_size: Annotated[
        int | None,
        choice_option("--block-size", options.BLOCK_SIZES, "int4: weights per scale. Default: 32."),
    ] = None,
    asymmetric: Annotated[
        bool, typer.Option("--asymmetric", help="int4: asymmetric weights (zero points).")
    ] = False,
    keep_float: Annotated[
        list[str] | None,
        typer.Option(
            "--keep-float",
            metavar="NET",
            help="int8/mixed: keep this network whole in float (repeatable), e.g. a VLA's "
            "action expert: the others are quantized.",
            show_default=False,
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        choice_option(
            "--runtime",
            ("ort", "openvino"),
            "int8, CPU targets: what the artifact runs on: onnxruntime (Q/DQ ONNX, default) or "
            "OpenVINO (NNCF, OpenVINO IR).",
        ),
    ] = None,
    latency_ticks: LatencyTicksOpt = 30,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of generated data and the tick's noise.")
    ] = 0,
    force: ForceOpt = False,
    json_out: JsonReportOpt = None,
    quiet: QuietOpt = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Quantize for a target (INT8, INT4 or mixed), checked vs FP32.

    Fidelity is measured over whole ticks of the loop program on held-out calibration data.
    """
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed, finish, output
    from edgekit.cli.render.progress import shown
    from edgekit.cli.render.quantize import print_quantize
    from edgekit.quantize import quantize as run_quantize
    from edgekit.quantize import quantize_config
    from edgekit.targets import get_target

    output(json_out, quiet)
    config = quantize_config(
        precision=precision,
        target=get_target(target).name,
        method=method,
        block_size=block_size,
        symmetric=False if asymmetric else None,
        max_error=options.budget(max_error),
        keep_float=keep_float or None,
        runtime=runtime,
        latency_ticks=latency_ticks,
        seed=seed,
    )
    options.check_data(calib, CALIB_REQUIRED)
    check_out_dir(out, force)
    with claimed(out, json_out), shown("quantize"):  # claimed: an unwritable --out fails now
        source = options.load_source(model, weights, inputs, allow_pickle, timeout, allow_plugin)
        result = run_quantize(source, out, config, calib, force=force)
    print_quantize(result)
    finish(result, json_out, out)
