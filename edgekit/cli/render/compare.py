"""``edgekit compare``: one row per artifact, recorded fidelity next to latency."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.cli.render import line, table

if TYPE_CHECKING:
    from edgekit.run.compare import CompareResult


def print_compare(result: CompareResult, out: Path | None = None) -> None:
    from edgekit.run.compare import _cells

    table(
        f"variants on {result.target}: fidelity as each manifest recorded it (against its "
        "stage's reference), whole-tick latency with distribution-free 95% intervals",
        ["artifact", "made by", "fidelity (recorded)", "against", "p50 ms [95% CI]",
         "p99 ms [95% CI]", "ticks", "evidence"],
        [[c.strip("`") for c in _cells(row)] for row in result.rows],
    )  # fmt: skip
    if any(r.latency.get("p99_ci_reaches_max") for r in result.rows):
        line("note: (max): too few ticks to bound p99 below the slowest tick; raise --ticks")
    for name, file in result.files.items():
        line(f"{name}: {Path(out or '.') / file}")
