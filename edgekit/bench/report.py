"""What every bench report shares, measured or estimated: its schema tag, the model facts, the
atomic JSON writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.destinations import write_text_atomic
from edgekit.loader import Source
from edgekit.loop import LoopProgram

REPORT_SCHEMA = 1


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
