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
    QuietOpt,
    TargetOpt,
    ThreadsOpt,
    TimeoutOpt,
    WeightsOpt,
    choice_option,
)


def bench(
    model: ModelArg,
    target: TargetOpt = "cpu",
    runtime: Annotated[
        str,
        choice_option(
            "--runtime",
            options.BENCH_RUNTIMES,
            "What runs the networks: onnxruntime, OpenVINO (x86/ARM CPUs), eager PyTorch, or "
            "TensorRT (on a Jetson).",
        ),
    ] = "ort",
    ticks: Annotated[int, typer.Option("--ticks", help="Timed ticks.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up ticks.")] = 20,
    threads: ThreadsOpt = None,
    spin: Annotated[
        bool, typer.Option("--spin", help="Let onnxruntime threads spin-wait (off by default).")
    ] = False,
    hz: Annotated[
        float | None, typer.Option("--hz", help="Loop rate. Default: the model's.")
    ] = None,
    budget_ms: Annotated[
        float | None,
        typer.Option("--budget-ms", help="Tick budget in ms. Default: the target's at --hz."),
    ] = None,
    gate: Annotated[
        str, choice_option("--gate", options.GATES, "Statistic held to the budget.")
    ] = "p99",
    program: Annotated[
        str | None,
        typer.Option("--program", metavar="NAME", help="Another loop program of the model."),
    ] = None,
    loop: Annotated[
        list[str] | None,
        typer.Option(
            "--loop",
            metavar="KEY=VALUE",
            help="Override a loop-program parameter (repeatable).",
        ),
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
        choice_option(
            "--precision",
            options.BENCH_PRECISIONS,
            "Estimates: the precision to estimate (default: the target's usual). Measured with "
            "--runtime openvino: its inference precision, fp32 (default) or bf16.",
        ),
    ] = None,
    json_out: JsonReportOpt = None,
    quiet: QuietOpt = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Time the whole control tick against the target's budget.

    Exit 1 when the budget is missed. A target that is not this machine gets a roofline
    estimate instead, labelled as such.
    """
    from edgekit.bench import BenchConfig
    from edgekit.bench import bench as run_bench
    from edgekit.bench.api import parse_loop_params
    from edgekit.bench.estimated import EstimateReport
    from edgekit.cli.guard import check_json, finish, output
    from edgekit.cli.render.bench import print_bench, print_estimate
    from edgekit.cli.render.progress import shown
    from edgekit.targets import get_target

    output(json_out, quiet)
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
