"""``edgekit models``: the built-in zoo with its parameters, FLOPs and calls per tick."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def models(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this zoo kind.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write rows as JSON.")
    ] = None,
) -> None:
    """List the built-in stack-model zoo: parameters, FLOPs and network calls per tick."""
    import json

    from edgekit.cli.guard import check_json
    from edgekit.cli.render import si, table
    from edgekit.inspect import zoo_facts

    check_json(json_out)  # an unwritable --json fails before the zoo is counted
    facts = zoo_facts(kind)
    table(
        "edgekit zoo (FLOPs counted on one real tick of the default loop program)",
        ["kind", "category", "preset", "params", "FLOPs/tick", "calls/tick", "Hz", "program"],
        [
            [
                f.kind,
                f.category,
                f.preset,
                si(f.params),
                si(f.flops_per_tick),
                " + ".join(f"{n} x{k}" for n, k in f.calls_per_tick.items()),
                f"{f.hz:g}",
                f.program,
            ]
            for f in facts
        ],
    )
    if json_out:
        from edgekit.destinations import write_text_atomic

        write_text_atomic(
            json_out, json.dumps([f.to_dict() for f in facts], indent=2) + "\n", "--json"
        )
