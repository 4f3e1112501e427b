"""``edgekit run``: live stage progress, then every gate and the verdict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from edgekit.cli.render import line, table, verdict, warning_lines
from edgekit.cli.render.progress import shown

if TYPE_CHECKING:
    from edgekit.run.runner import RunResult


@contextmanager
def run_progress(quiet: bool) -> Iterator[tuple[Any, Any]]:
    """Show the run's progress (each stage, and every step inside it: see
    :mod:`edgekit.cli.render.progress`); yields the (on_event, distill_progress) callbacks
    :func:`edgekit.run.run` takes, both None: the stages report through
    :mod:`edgekit.progress`."""
    with shown("run", quiet):
        yield None, None


def _gate_number(x: float | None, unit: str, ms_fmt: str, pct_fmt: str) -> str:
    """A gate's value or limit: milliseconds as they are, ratios as percentages."""
    if x is None:
        return "-"
    return f"{x:{ms_fmt}} ms" if unit == "ms" else f"{x * 100:{pct_fmt}}%"


def print_run(result: RunResult) -> None:
    """The final summary of ``edgekit run``: every gate, the verdict and the report files."""
    rep = result.report
    rows = []
    for g in rep["gates"]:
        shown = _gate_number(g["value"], g["unit"], ".3g", ".2f")
        lim = _gate_number(g["limit"], g["unit"], "g", "g")
        rows.append(
            [g["name"], shown, lim, g["evidence"] or "-", g["status"].upper(), g["message"]]
        )
    table(
        f"edgekit run {rep['recipe']['name']} ({rep['model']})",
        ["gate", "value", "limit", "evidence", "verdict", "note"],
        rows,
    )
    for key, path in result.files.items():
        if not key.startswith("plot:"):
            line(f"{key}: {path}")
    n_failed = sum(g["status"] == "failed" for g in rep["gates"])
    text = f"{len(rep['gates'])} gate(s), {n_failed} failed, in {rep['seconds']:.1f} s" + (
        f"; stopped: {rep['error']}" if rep.get("error") else ""
    )
    warning_lines(rep.get("warnings") or [])
    verdict(bool(rep["passed"]), text, gated=bool(rep["gates"]))
