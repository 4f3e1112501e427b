"""Output for people and for CI: a rich table on a terminal, plain text when piped or in CI.

This module holds the primitives (``table``, ``line``, ``verdict``...); one submodule per
command renders its result with them (``render.bench``, ``render.quantize``...), and
``render.json_report`` writes the machine-readable ``--json`` form.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def narrow() -> bool:
    """A terminal under 100 columns (80, say): tables drop their side borders and padding, and
    a report may stack a column under its table (plain text is never narrow)."""
    return not plain() and console().width < 100


# columns of words: left-aligned; the first and the prose ones wrap when narrow, figures never
TEXT_COLUMNS = {"evidence", "verdict", "status", "stage", "gate", "output", "program", "network",
                "artifact", "method"}  # fmt: skip
PROSE_COLUMNS = {"note", "notes", "reason", "summary", "why"}
_FIGURE = re.compile(r"[-+]?\d[\d.,]*\s*%?")  # 0.117, 41.106, 73.8%: never wraps, never cut


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
    tight = narrow()  # 80 columns: no side borders or edge padding, text columns share the room
    prose = [
        c in PROSE_COLUMNS or (i == 0 and not _figures(rows, i)) for i, c in enumerate(columns)
    ]  # a first column of figures (bench's p50) is figures: never squeezed out, never cut
    t = Table(
        title=title,
        title_justify="left",
        expand=tight and any(prose),  # the prose takes what the figures leave
        box=box.SIMPLE_HEAD if tight else box.HEAVY_HEAD,
        show_edge=not tight,
        pad_edge=not tight,
    )
    for i, (c, wraps) in enumerate(zip(columns, prose, strict=True)):
        text = wraps or c in TEXT_COLUMNS or (i == 0 and not tight)  # wide: first goes left
        t.add_column(c, justify="left" if text else "right", no_wrap=not wraps,
                     ratio=1 if wraps else None)  # fmt: skip
    for r in rows:
        t.add_row(*r)
    console().print(t)


def _figures(rows: Sequence[Sequence[str]], i: int) -> bool:
    return bool(rows) and all(_FIGURE.fullmatch(r[i]) for r in rows)


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
            out = console()
            head = f"verdict: {word}  "
            rows = clause_lines(text, out.width - len(head), out.width - len(VERDICT_INDENT))
            shown = Text.assemble("verdict: ", (word, style), "  ", rows[0])
            for row in rows[1:]:
                shown.append("\n" + VERDICT_INDENT + row)
            out.print(shown, highlight=False, soft_wrap=True)  # wrapped here, not by rich


VERDICT_INDENT = " " * len("verdict: ")  # a verdict's further lines start under PASS / FAIL
# where a line of prose breaks, best first: before ' (', after '; ' or ', ', between words
_BREAKS = (re.compile(r" (?=\()"), re.compile(r"(?<=[;,]) (?=\S)"), re.compile(" "))


def clause_lines(text: str, first: int, rest: int) -> list[str]:
    """``text`` in lines of at most ``first`` then ``rest`` characters: a parenthesis, then a
    clause, then a word stays whole on a line where it fits; never broken inside a word (one
    longer than a line stands alone). Text that fits ``first`` is one line, as it was."""
    lines = [""]

    def put(piece: str, level: int) -> None:
        now = lines[-1]
        joined = f"{now} {piece}" if now else piece
        if len(joined) <= max(first if len(lines) == 1 else rest, 1):
            lines[-1] = joined
        elif now and len(piece) <= rest:  # whole on a line of its own
            lines.append(piece)
        elif level < len(_BREAKS):  # too long for any line: break it finer
            for part in _BREAKS[level].split(piece):
                put(part, level + 1)
        elif now:
            lines.append(piece)
        else:
            lines[-1] = piece

    put(text, 0)
    return lines


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
