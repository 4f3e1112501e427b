"""``edgekit quantize``: INT8 / INT4 / mixed for a target (:mod:`edgekit.quantize`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    ForceOpt,
    InputsOpt,
    JsonReportOpt,
    LatencyTicksOpt,
    ModelArg,
    PickleOpt,
    PluginOpt,
    TimeoutOpt,
    WeightsOpt,
)


def quantize(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact folder to write.")],
    calib: Annotated[
        str | None,
        typer.Option(
            "--calib",
            help="Calibration .npz or folder (see calib_data/README.md), "
            "or 'synthetic' to calibrate on generated observations explicitly.",
        ),
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="int8, int4 or mixed.")] = "int8",
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile.")] = "cpu",
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
        typer.Option("--method", help="int8/mixed calibration: minmax, percentile or entropy."),
    ] = None,
    block_size: Annotated[
        int | None, typer.Option("--block-size", help="int4: weights per scale (32, 64, 128).")
    ] = None,
    asymmetric: Annotated[
        bool, typer.Option("--asymmetric", help="INT4: asymmetric weights (zero points).")
    ] = False,
    latency_ticks: LatencyTicksOpt = 30,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of generated data and the tick's noise.")
    ] = 0,
    force: ForceOpt = False,
    json_out: JsonReportOpt = None,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Quantize (INT8 / INT4 / mixed) for a target, with whole-tick fidelity vs FP32."""
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed, finish
    from edgekit.cli.render.progress import shown
    from edgekit.cli.render.quantize import print_quantize
    from edgekit.quantize import quantize as run_quantize
    from edgekit.quantize import quantize_config
    from edgekit.targets import get_target

    config = quantize_config(
        precision=precision,
        target=get_target(target).name,
        method=method,
        block_size=block_size,
        symmetric=False if asymmetric else None,
        max_error=options.budget(max_error),
        latency_ticks=latency_ticks,
        seed=seed,
    )
    check_out_dir(out, force)
    with claimed(out, json_out), shown("quantize"):  # claimed: an unwritable --out fails now
        source = options.load_source(model, weights, inputs, allow_pickle, timeout, allow_plugin)
        result = run_quantize(source, out, config, calib, force=force)
    print_quantize(result)
    finish(result, json_out)
