"""``edgekit compare``: several artifacts benched alike, next to the fidelity each recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.options import JsonReportOpt, PluginOpt


def compare(
    artifacts: Annotated[
        list[str],
        typer.Argument(
            help="Artifact folders (or any model references) to compare.", show_default=False
        ),
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile.")] = "cpu",
    ticks: Annotated[int, typer.Option("--ticks", help="Timed ticks per artifact.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", help="Warm-up ticks (not in the stats).")] = 20,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Intra-op threads (default: usable CPUs).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write compare.md, compare.json and compare.png here."),
    ] = None,
    json_out: JsonReportOpt = None,
    allow_plugin: PluginOpt = False,
) -> None:
    """Bench every artifact on one target with the same settings and show it next to the
    fidelity its manifest recorded (a table, and with --out a plot); a report, not a gate."""
    from contextlib import nullcontext

    from edgekit.bench import BenchConfig
    from edgekit.cli import options
    from edgekit.cli.guard import check_json, claimed, finish
    from edgekit.cli.render.compare import print_compare
    from edgekit.run.compare import compare as run_compare
    from edgekit.run.compare import write_outputs
    from edgekit.targets import get_target

    config = BenchConfig.from_options(target=target, ticks=ticks, warmup=warmup, threads=threads)
    get_target(target)  # unknown target: fail before loading anything
    check_json(json_out)
    with claimed(out, json_out) if out is not None else nullcontext():
        sources = [options.load_source(a, None, None, False, None, allow_plugin) for a in artifacts]
        result = run_compare(sources, config)
        if out is not None:
            write_outputs(result, out)
    print_compare(result, out)
    finish(result, json_out)
