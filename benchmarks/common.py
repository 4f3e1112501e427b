"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"


def round_robin(variants: dict[str, Any], rounds: int, per_round: int) -> dict[str, np.ndarray]:
    """Call each variant's ``fn(n) -> ns samples`` in turn, ``rounds`` times; concatenate."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            out[name].append(np.asarray(fn(per_round)))
    return {k: np.concatenate(v) for k, v in out.items()}


def p50_ms(ns: np.ndarray) -> float:
    return float(np.median(ns)) / 1e6


def save(name: str, rows: list[dict[str, Any]], settings: dict[str, Any]) -> Path:
    from edgekit.bench.host import environment

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "settings": settings,
        "environment": environment(),
        "machine": platform.machine(),
        "rows": rows,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
