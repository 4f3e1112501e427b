"""The zoo's figures as recorded for this model code, so ``edgekit models`` builds nothing.

Counting a preset's parameters and FLOPs means building its torch modules and running one tick
(:func:`edgekit.inspect.zoo_facts`): seconds per kind. ``edgekit/zoo/facts.json`` holds those
counts for every preset, with a fingerprint of the code they depend on (``edgekit/models``,
``edgekit/loop`` and the counting code). A listing uses the file only while the fingerprint
matches the installed code, and says so ("recorded"); otherwise, or with ``--recount``, it
counts now ("counted"). ``python -m edgekit.zoo_table`` records the file again;
``tests/test_cli_conventions.py`` fails while it is stale.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgekit.errors import ModelLoadError
from edgekit.registry import normalize

ROOT = Path(__file__).parent
FACTS_FILE = ROOT / "zoo" / "facts.json"
FINGERPRINTED = ("models", "loop", "inspect.py")  # what the figures depend on


def fingerprint() -> str:
    """sha256 of the source the figures depend on (file names and contents)."""
    h = hashlib.sha256()
    for part in FINGERPRINTED:
        path = ROOT / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(f.relative_to(ROOT).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def recorded() -> list[dict[str, Any]] | None:
    """The recorded rows (one per kind and preset, in zoo order), or None when there is no
    file or it was recorded for other model code."""
    try:
        data = json.loads(FACTS_FILE.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint():
        return None
    rows = data.get("rows")
    return rows if isinstance(rows, list) else None


def kinds(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """kind -> its presets, in zoo order."""
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["kind"], []).append(r["preset"])
    return out


def zoo_rows(kind: str | None = None, recount: bool = False) -> tuple[list[dict[str, Any]], str]:
    """(rows, how): the recorded figures ("recorded"), or figures counted now ("counted": no
    valid record, or ``recount``). An unknown ``kind`` is a :class:`BadInputError`."""
    rows = None if recount else recorded()
    if rows is None:
        from edgekit.inspect import zoo_facts

        return [f.to_dict() for f in zoo_facts(kind)], "counted"
    if kind is not None:
        known = kinds(rows)
        key = normalize(kind)
        if key not in known:
            from edgekit.errors import BadInputError

            raise BadInputError(f"unknown zoo model {kind!r}; known: {', '.join(known)}")
        rows = [r for r in rows if r["kind"] == key]
    return rows, "recorded"


def check_zoo_ref(ref: str) -> None:
    """Refuse ``zoo:NAME[:PRESET]`` naming no kind or preset, from the record (no torch); the
    loader says the same when there is no valid record."""
    if not ref.startswith("zoo:"):
        return
    parts = ref.split(":")
    rows = recorded() if len(parts) in (2, 3) and parts[1] else None
    if rows is None:
        return  # a malformed reference or no record: the loader's message
    known = kinds(rows)
    name = normalize(parts[1])
    if name not in known:
        raise ModelLoadError(f"{ref}: unknown zoo model {parts[1]!r}; known: {', '.join(known)}")
    preset = parts[2] if len(parts) == 3 else "default"
    if preset not in known[name]:
        raise ModelLoadError(
            f"zoo:{name}: unknown preset {preset!r}; known: {', '.join(known[name])}"
        )


def record() -> Path:
    """Count every preset now and write :data:`FACTS_FILE` (``python -m edgekit.zoo_table``)."""
    import torch

    from edgekit import __version__
    from edgekit.inspect import zoo_facts

    data = {
        "about": "edgekit models: figures counted by edgekit.inspect.zoo_facts for the code "
        "with this fingerprint (python -m edgekit.zoo_table records them again)",
        "edgekit": __version__,
        "torch": torch.__version__,
        "fingerprint": fingerprint(),
        "rows": [f.to_dict() for f in zoo_facts()],
    }
    FACTS_FILE.write_text(json.dumps(data, indent=1) + "\n")
    return FACTS_FILE


if __name__ == "__main__":
    print(f"recorded {record()}")
