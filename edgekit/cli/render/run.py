"""``edgekit run``: live stage progress, then every gate and the verdict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from edgekit.cli.render import line, plain, table, verdict, warning_lines

if TYPE_CHECKING:
    from edgekit.run.runner import RunResult


@contextmanager
def run_progress(quiet: bool) -> Iterator[tuple[Any, Any]]:
    """(on_event, distill_progress) for ``edgekit run``: on a terminal one live rich display
    (a spinner per stage, the distillation bar with loss and held-out error); in CI or when
    piped a plain line per stage; nothing when quiet."""
    if quiet:
        yield None, None
        return
    if plain():

        def on_line(event: str, d: dict[str, Any]) -> None:
            if event == "stage-start":
                line(f"[{d['index'] + 1}/{d['total']}] {d['stage']} ...")
            elif event == "stage-end":
                line(f"      {d['status']} in {d['seconds']:.1f} s: {d['summary']}")
            elif event == "bench-target":
                line(f"      bench {d['target']} on {d['artifact']}")

        yield on_line, None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # redrawn on events only: a refresh thread would wake during timed ticks and steal a core
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        auto_refresh=False,
    )
    tasks: dict[str, Any] = {}

    def on_event(event: str, d: dict[str, Any]) -> None:
        if event == "stage-start":
            desc = f"[{d['index'] + 1}/{d['total']}] {d['stage']}"
            tasks["stage"] = bar.add_task(desc, total=None, info="")
        elif event == "bench-target":
            bar.update(tasks["stage"], info=f"bench {d['target']}")
        elif event == "stage-end":
            info = f"{d['status']}: {d['summary']}"
            bar.update(tasks["stage"], total=1, completed=1, info=info[:100])
        bar.refresh()

    def on_train(phase: str, done: int, total: int, metrics: dict[str, float]) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(f"      {phase}", total=total, info="")
        info = f"loss {metrics.get('loss', 0):.4g}"
        if "holdout" in metrics:
            info += f"  held-out {metrics['holdout'] * 100:.2f}%"
        bar.update(tasks[phase], completed=done, info=info)
        bar.refresh()

    with bar:
        yield on_event, on_train


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
