"""``edgekit targets``: hardware targets, their published figures and default budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def targets(
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write as JSON.")] = None,
) -> None:
    """List hardware targets with their published figures and default budgets."""
    import json

    from edgekit.cli.guard import check_json
    from edgekit.cli.render import table
    from edgekit.targets import TARGETS

    check_json(json_out)

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    rows = []
    for _, t in TARGETS.items():
        budgets = " / ".join(f"{t.budget_ms(hz):.1f}" for hz in (10, 50, 200))
        rows.append(
            [
                t.name,
                t.device,
                f"{t.runtime} {t.tensorrt}" if t.tensorrt else t.runtime,
                fmt(t.int8_tops),
                fmt(t.fp16_tflops),
                fmt(t.memory_gbs),
                budgets,
                "measured" if t.measurable_here else "not here",
            ]
        )
    table(
        "targets (published figures; budgets = loop period x headroom)",
        [
            "target",
            "device",
            "runtime",
            "INT8 TOPS",
            "FP16 TFLOPS",
            "GB/s",
            "budget ms @10/50/200 Hz",
            "latency",
        ],
        rows,
    )
    if json_out:
        from edgekit.destinations import write_text_atomic

        rows_json = json.dumps([t.to_dict() for _, t in TARGETS.items()], indent=2) + "\n"
        write_text_atomic(json_out, rows_json, "--json")
