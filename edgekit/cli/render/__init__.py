"""Output for people and for CI: a rich table on a terminal, plain text when piped or in CI.

This module holds the primitives (``table``, ``line``, ``verdict``...); one submodule per
command renders its result with them (``render.bench``, ``render.quantize``...), and
``render.json_report`` writes the machine-readable ``--json`` form.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from edgekit.cli.env import force_color, in_ci, no_color
from edgekit.cli.guard import verdict_stdout


def plain() -> bool:
    """Plain text (no escape codes): with ``NO_COLOR``, in CI or when stdout is not a terminal;
    ``FORCE_COLOR`` asks for the terminal's rich output anyway (see :mod:`edgekit.cli.env`)."""
    if no_color():
        return True
    if force_color():
        return False
    return in_ci() or not sys.stdout.isatty()


def console() -> Console:
    if plain():
        return Console(no_color=True, highlight=False, width=200, force_terminal=False)
    return Console(force_terminal=True if force_color() else None)


# columns of words: left-aligned; the first and the prose ones wrap when narrow, figures never
TEXT_COLUMNS = {"evidence", "verdict", "status", "stage", "gate", "output", "program", "network",
                "artifact", "method"}  # fmt: skip
PROSE_COLUMNS = {"note", "notes", "reason", "summary", "why"}


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if plain():
        widths = [
            max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
            for i, c in enumerate(columns)
        ]
        print(title)
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        return
    narrow = console().width < 100  # 80 columns: no side borders, text columns share the room
    t = Table(
        title=title,
        title_justify="left",
        expand=narrow,
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
    )
    for c in columns:
        prose = c == columns[0] or c in PROSE_COLUMNS
        text = prose or c in TEXT_COLUMNS
        t.add_column(c, justify="left" if text else "right", no_wrap=not prose,
                     ratio=1 if prose else None)  # fmt: skip
    for r in rows:
        t.add_row(*r)
    console().print(t)


def line(text: str) -> None:
    console().print(text, markup=False, highlight=False) if not plain() else print(text)


def verdict(passed: bool, text: str, *, gated: bool = True) -> None:
    """The last line of a report: plain in CI, bold green/red on a terminal. ``gated``
    False (nothing was held to a limit) reads ``no gate set``, never PASS. ``--quiet`` keeps
    it (see :func:`edgekit.cli.guard.verdict_stdout`)."""
    word = "PASS" if passed else "FAIL"
    style = "bold green" if passed else "bold red"
    if passed and not gated:
        word, style = "no gate set", "bold yellow"
    with verdict_stdout():
        if plain():
            print(f"verdict: {word}  {text}")
        else:
            console().print(f"verdict: [{style}]{word}[/{style}]  ", end="")
            console().print(text, markup=False, highlight=False)


def warning_lines(items: Sequence[str]) -> None:
    """One ``warning:`` line each, before the verdict (the result's ``warnings``)."""
    for text in items:
        if plain():
            print(f"warning: {text}")
        else:
            Console().print("[bold yellow]warning:[/bold yellow] ", end="")
            Console().print(text, markup=False, highlight=False)


def si(n: float, unit: str = "") -> str:
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def fidelity_cells(row: dict[str, Any]) -> list[str]:
    """program, output, max-abs, rel-L2, cosine, agreement of one fidelity row (integer
    outputs, decisions: agreement only, of tokens or of choices)."""
    agree = row["agreement"]
    if agree is None:
        return [
            row["program"],
            row["output"],
            f"{row['max_abs']:.3g}",
            f"{row['rel_l2'] * 100:.2f}%",
            f"{row['cosine']:.5f}",
            "-",
        ]
    kind = {"token_agreement": "tokens", "choice_agreement": "choices"}.get(row.get("metric") or "")
    return [row["program"], row["output"], "-", "-", "-",
            f"{agree * 100:.1f}%" + (f" of {kind}" if kind else "")]  # fmt: skip


def budget_text(error: float, fidelity: dict[str, Any], budget: Any) -> str:
    """The verdict line's figures: worst rel-L2 and the agreements measured, and the budget."""
    parts = [f"worst rel-L2 {error * 100:.2f}%"]
    for key, label in (("token_agreement", "token"), ("choice_agreement", "choice")):
        if fidelity.get(key) is not None:
            parts.append(f"{label} agreement {fidelity[key] * 100:.1f}%")
    gate = "(set --max-error to gate it)" if budget is None else f"vs --max-error {budget}"
    return f"{', '.join(parts)} {gate}"
