"""``edgekit models``: the built-in zoo with its parameters, FLOPs and calls per tick.

The figures come from the record of this model code (:mod:`edgekit.zoo_table`, no model is
built) or, with ``--recount`` or no valid record, are counted now; the output says which.
"""

from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli.options import JsonReportOpt, QuietOpt


def models(
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help="Only this zoo kind.")
    ] = None,
    recount: Annotated[
        bool,
        typer.Option(
            "--recount",
            help="Build every preset and count its figures now (seconds per kind) instead of "
            "reading the record kept for this model code.",
        ),
    ] = False,
    json_out: JsonReportOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """List the stack-model zoo: parameters, FLOPs and calls per tick.

    FLOPs are counted on one real tick of each preset's default loop program. The figures are
    read from the record kept for this model code (nothing is built), labelled "recorded";
    with --recount, or when the code changed since the record, they are counted now.
    """
    import json

    from edgekit.cli.guard import check_json, output, put_json
    from edgekit.cli.render import line, si, table
    from edgekit.zoo_table import zoo_rows

    output(json_out, quiet)
    check_json(json_out)  # an unwritable --json fails before the zoo is counted
    rows, how = zoo_rows(kind, recount)
    table(
        f"edgekit zoo (FLOPs of one real tick of the default loop program; figures {how})",
        ["kind", "category", "preset", "params", "FLOPs/tick", "calls/tick", "Hz", "program"],
        [
            [
                r["kind"],
                r["category"],
                r["preset"],
                si(r["params"]),
                si(r["flops_per_tick"]),
                " + ".join(f"{n} x{k}" for n, k in r["calls_per_tick"].items()),
                f"{r['hz']:g}",
                r["program"],
            ]
            for r in rows
        ],
    )
    if how == "recorded":
        line("figures recorded for this model code (edgekit/zoo/facts.json); --recount: count now")
    if json_out:
        put_json(json_out, json.dumps([{**r, "figures": how} for r in rows], indent=2) + "\n")
