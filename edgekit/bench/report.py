"""What every bench report shares, measured or estimated: the model facts, the budget's
warnings, the atomic JSON writer (the envelope and schema tag: :mod:`edgekit.reports`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.destinations import write_text_atomic
from edgekit.loader import Source
from edgekit.loop import LoopProgram


def budget_warnings(budget_ms: float, hz: float) -> list[str]:
    """A budget longer than the loop period: a tick within it still overruns the loop."""
    period = 1000.0 / hz
    if budget_ms <= period:
        return []
    return [
        f"budget {budget_ms:.2f} ms is longer than the loop period {period:.2f} ms at "
        f"{hz:g} Hz: a tick within budget still overruns the loop"
    ]


def model_info(source: Source, prog: LoopProgram) -> dict[str, Any]:
    """What a bench report says of the model and the loop program it ran (or estimated)."""
    return {
        "ref": source.ref,
        "kind": source.spec.kind,
        "preset": source.spec.preset,
        "program": prog.name,
        "program_params": prog.params,
        "calls_per_tick": prog.calls_per_tick(),
    }


def write_report(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a JSON report atomically (a temporary sibling, then a rename); creates its folder.

    Raises:
        DestinationError: the OS refused the write (exit 2), naming ``path``.
    """
    from edgekit.destinations import user_writes

    path = Path(path)
    with user_writes(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
