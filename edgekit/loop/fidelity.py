"""Fidelity of a compressed model to its FP32 original, on whole control ticks.

Both run the same loop program on held-out observations from the same reset (same sampling
noise), on onnxruntime sessions with graph optimizations on, so what is compared is what ships.
Per output: max-abs error, relative L2 (||q - f|| / ||f|| over all ticks), cosine. Integer
outputs (an index picked by a reranker) report the fraction of ticks that agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.loop import Arrays, LoopProgram, Runtime
from edgekit.loop.capture import run_episode
from edgekit.loop.compare import cosine


@dataclass(frozen=True)
class FidelityRow:
    scope: str  # "tick" (whole control tick) or "network" (one call)
    program: str  # program name, or network name for scope "network"
    output: str
    max_abs: float
    rel_l2: float
    cosine: float
    agreement: float | None = None  # integer outputs: fraction of ticks equal

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_runs(scope: str, name: str, ref: list[Arrays], got: list[Arrays]) -> list[FidelityRow]:
    rows = []
    for key in ref[0]:
        r = np.stack([np.asarray(t[key]) for t in ref])
        g = np.stack([np.asarray(t[key]) for t in got])
        if r.dtype.kind in "iub":
            agree = float(np.mean([np.array_equal(a, b) for a, b in zip(r, g, strict=True)]))
            rows.append(
                FidelityRow(
                    scope,
                    name,
                    key,
                    float(np.abs(r - g).max()),
                    0.0,
                    1.0 if agree == 1.0 else 0.0,
                    agree,
                )
            )
            continue
        r64, g64 = r.astype(np.float64), g.astype(np.float64)
        denom = float(np.linalg.norm(r64))
        diff = float(np.linalg.norm(g64 - r64))
        rel = diff / denom if denom > 0 else (0.0 if diff == 0 else float("inf"))
        if not np.isfinite(g64).all():
            rel = float("inf")
        rows.append(
            FidelityRow(scope, name, key, float(np.abs(g64 - r64).max()), rel, cosine(r, g))
        )
    return rows


def tick_fidelity(
    programs: dict[str, LoopProgram],
    ref: Runtime,
    got: Runtime,
    observations: list[Arrays],
    seed: int = 0,
) -> list[FidelityRow]:
    rows: list[FidelityRow] = []
    for name, program in programs.items():
        a = run_episode(program, ref, observations, seed)
        b = run_episode(program, got, observations, seed)
        rows += compare_runs("tick", name, a, b)
    return rows


def network_error(ref: Runtime, got: Runtime, network: str, feeds: list[Arrays]) -> float:
    """Worst relative-L2 over a network's float outputs on the given feeds (sensitivity)."""
    a = [ref.run(network, f) for f in feeds]
    b = [got.run(network, f) for f in feeds]
    return worst_error(compare_runs("network", network, a, b))


def worst_error(rows: list[FidelityRow]) -> float:
    """The gate statistic: worst relative L2 over float outputs (0 when there are none)."""
    errs = [r.rel_l2 for r in rows if r.agreement is None]
    return max(errs) if errs else 0.0
