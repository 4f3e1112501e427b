"""The machine-readable form of a report: ``--json`` (the destination was checked before the
command's work, see :mod:`edgekit.cli.guard`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write a ``--json`` report whole (its folder was checked before the command's work)."""
    import json

    from edgekit.destinations import write_text_atomic

    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n", "--json")


def emit_json(json_out: str | None, report: dict[str, object]) -> None:
    """``edgekit run --json``: the report to a file, or to stdout for '-'; nothing for None."""
    import json

    if json_out is None:
        return
    text = json.dumps(report, indent=2) + "\n"
    if json_out == "-":
        sys.stdout.write(text)
    else:
        from edgekit.destinations import write_text_atomic

        write_text_atomic(json_out, text, "--json")
