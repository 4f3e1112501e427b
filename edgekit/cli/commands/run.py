"""``edgekit run``: a recipe's stages in order, its gates and its reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.options import JsonReportOpt, QuietOpt


def run_recipe(
    recipe: Annotated[
        Path, typer.Argument(metavar="RECIPE", help="Recipe YAML file.", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Run folder, kept as the stage cache. Default: out/NAME (the recipe's name).",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", metavar="PRESET", help="Replace the zoo model's preset (e.g. tiny)."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="FILE|DIR|synthetic",
            help="Observations instead of the recipe's data.",
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a recipe setting (repeatable), e.g. stages[0].steps=50.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    json_out: JsonReportOpt = None,
) -> None:
    """Run a recipe: its stages in order, its gates, its reports.

    Gates per target and per fidelity limit; report.json, junit.xml, summary.md and latency
    plots go to the run folder. Exit 1: a gate failed.
    """
    from edgekit.cli.guard import claimed, json_stdout, output
    from edgekit.cli.render.json_report import emit_json
    from edgekit.cli.render.run import print_run, run_progress
    from edgekit.errors import GateFailed
    from edgekit.run import RunError, load_recipe
    from edgekit.run import run as run_lib

    output(json_out, quiet)
    name = load_recipe(recipe, overrides).name  # a bad recipe fails (exit 2) before any output
    out = out if out is not None else Path("out") / name
    with claimed(out, json_out), run_progress(quiet) as (on_event, distill_progress):
        try:
            result = run_lib(
                recipe,
                out,
                preset=preset,
                data=data,
                overrides=overrides,
                on_event=on_event,
                distill_progress=distill_progress,
            )
        except RunError as e:
            result = e.result
            with json_stdout():
                emit_json(json_out, result.report)
            print_run(result)
            raise
    with json_stdout():
        emit_json(json_out, result.report)
    print_run(result)
    if not result.passed:
        failed = [g["name"] for g in result.report["gates"] if g["status"] == "failed"]
        raise GateFailed(f"{len(failed)} gate(s) failed: {'; '.join(failed)}")
