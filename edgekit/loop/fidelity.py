"""Fidelity of a compressed model to its FP32 original, on whole control ticks.

Both run the same loop program on held-out observations from the same reset (same sampling
noise), on onnxruntime sessions with graph optimizations on, so what is compared is what ships.
Per output: max-abs error, relative L2 (||q - f|| / ||f|| over all ticks), cosine. Integer
outputs are decisions, not measurements, and report agreement instead: decoded tokens (an
integer array per tick) ``token_agreement``, the fraction of tokens equal over all ticks; a
choice (one integer per tick: a reranker's argmax) ``choice_agreement``, the fraction of ticks
that pick the same one. A fidelity budget (:class:`edgekit.gates.ErrorBudget`) gates on the
worst of either (:func:`metric_value`).
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
    agreement: float | None = None  # integer outputs: fraction of tokens / choices equal
    metric: str | None = None  # integer outputs: "token_agreement" or "choice_agreement"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_runs(scope: str, name: str, ref: list[Arrays], got: list[Arrays]) -> list[FidelityRow]:
    rows = []
    for key in ref[0]:
        r = np.stack([np.asarray(t[key]) for t in ref])
        g = np.stack([np.asarray(t[key]) for t in got])
        if r.dtype.kind in "iub":
            equal = r == g
            metric = "token_agreement" if r.ndim > 1 else "choice_agreement"
            agree = float(equal.mean()) if equal.size else 1.0
            apart = np.abs(r.astype(np.int64) - g.astype(np.int64))
            rows.append(
                FidelityRow(
                    scope,
                    name,
                    key,
                    float(apart.max()) if apart.size else 0.0,
                    0.0,
                    1.0 if agree == 1.0 else 0.0,
                    agree,
                    metric,
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


def metric_value(rows: list[FidelityRow], metric: str | None) -> float | None:
    """A budget metric over the rows: ``rel_l2`` (or None) the worst relative L2 of the float
    outputs; ``token_agreement`` / ``choice_agreement`` the lowest agreement of the outputs of
    that kind (None when the tick has none)."""
    if metric in (None, "rel_l2"):
        return worst_error(rows)
    vals = [r.agreement for r in rows if r.metric == metric and r.agreement is not None]
    return min(vals) if vals else None


def decision_metrics(rows: list[FidelityRow]) -> dict[str, float]:
    """The agreement metrics the rows have (token/choice agreement: their worst)."""
    out = {}
    for m in ("token_agreement", "choice_agreement"):
        v = metric_value(rows, m)
        if v is not None:
            out[m] = v
    return out
