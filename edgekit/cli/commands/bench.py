"""``edgekit bench``: the whole tick against a budget, measured here or estimated."""

from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    InputsOpt,
    JsonReportOpt,
    ModelArg,
    PickleOpt,
    PluginOpt,
    TimeoutOpt,
    WeightsOpt,
)


def bench(
    model: ModelArg,
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile.")] = "cpu",
    runtime: Annotated[str, typer.Option("--runtime", help="ort (default) or torch.")] = "ort",
    ticks: Annotated[int, typer.Option("--ticks", help="Timed ticks.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up ticks.")] = 20,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Intra-op threads (default: usable CPUs).")
    ] = None,
    spin: Annotated[
        bool, typer.Option("--spin", help="Let onnxruntime threads spin-wait (off by default).")
    ] = False,
    hz: Annotated[float | None, typer.Option("--hz", help="Loop rate (default: model's).")] = None,
    budget_ms: Annotated[
        float | None, typer.Option("--budget-ms", help="Tick budget (default: target's).")
    ] = None,
    gate: Annotated[str, typer.Option("--gate", help="Statistic held to the budget.")] = "p99",
    program: Annotated[
        str | None, typer.Option("--program", help="Another loop program of the model.")
    ] = None,
    loop: Annotated[
        list[str] | None,
        typer.Option("--loop", help="Override a loop-program parameter, KEY=VALUE (repeatable)."),
    ] = None,
    require_measured: Annotated[
        bool,
        typer.Option(
            "--require-measured",
            help="Fail (exit 1) instead of estimating a target that is not this machine.",
        ),
    ] = False,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Estimates only: fp32, fp16, int8 or int16 [default: the target's usual].",
        ),
    ] = None,
    json_out: JsonReportOpt = None,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Measure the whole control tick against the target's budget (exit 1 when missed); a
    target that is not this machine gets a labelled roofline estimate instead."""
    from edgekit.bench import BenchConfig
    from edgekit.bench import bench as run_bench
    from edgekit.bench.api import parse_loop_params
    from edgekit.bench.estimated import EstimateReport
    from edgekit.cli.guard import check_json, finish
    from edgekit.cli.render.bench import print_bench, print_estimate
    from edgekit.cli.render.progress import shown
    from edgekit.targets import get_target

    config = BenchConfig.from_options(
        target=target,
        runtime=runtime,
        ticks=ticks,
        warmup=warmup,
        threads=threads,
        spinning=spin,
        hz=hz,
        budget_ms=budget_ms,
        gate=gate,
        program=program,
        loop=parse_loop_params(loop),
        require_measured=require_measured,
        precision=precision,
    )
    get_target(target)  # unknown target: fail before loading the model
    check_json(json_out)  # an unwritable --json fails before the bench, not after
    with shown("bench"):
        source = options.load_source(model, weights, inputs, allow_pickle, timeout, allow_plugin)
        report = run_bench(source, config)
    if isinstance(report, EstimateReport):
        print_estimate(report)
    else:
        print_bench(report)
    finish(report, json_out)
