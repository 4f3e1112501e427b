"""``edgekit run``: a recipe's stages in order, its gates and its reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def run_recipe(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder, kept as the stage cache [out/NAME]."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Replace the zoo model's preset (e.g. tiny).")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Observations instead of the recipe's data.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a recipe setting, KEY=VALUE (repeatable): stages[0].steps=50"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Also write the report JSON here ('-': stdout, quiet)."),
    ] = None,
) -> None:
    """Run a recipe: every stage in order, gates per target and per fidelity limit; writes
    report.json, junit.xml, summary.md and latency plots to the run folder (exit 1: a gate
    failed)."""
    from edgekit.cli.guard import claimed
    from edgekit.cli.render.json_report import emit_json
    from edgekit.cli.render.run import print_run, run_progress
    from edgekit.errors import GateFailed
    from edgekit.run import RunError, load_recipe
    from edgekit.run import run as run_lib

    quiet = quiet or json_out == "-"
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
            emit_json(json_out, result.report)
            if not quiet:
                print_run(result)
            raise
    emit_json(json_out, result.report)
    if not quiet:
        print_run(result)
    if not result.passed:
        failed = [g["name"] for g in result.report["gates"] if g["status"] == "failed"]
        raise GateFailed(f"{len(failed)} gate(s) failed: {'; '.join(failed)}")
