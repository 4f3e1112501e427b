"""Numerical parity between a reference and an exported model.

Every output is compared (max-abs error, cosine similarity); every output over tolerance is
collected and reported together in one error, one line per output (optimum-onnx's
``validate_model_outputs`` does the same).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.loop import Arrays, LoopProgram, Runtime, TickContext
from edgekit.spec import Tolerance


@dataclass(frozen=True)
class ParityRow:
    scope: str  # "network" (one call on sample inputs) or "tick" (whole control tick)
    name: str  # network name, or the program name for ticks
    output: str
    max_abs: float
    max_ref: float
    cosine: float
    limit: float
    min_cosine: float

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.limit and self.cosine >= self.min_cosine

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def line(self) -> str:
        return (
            f"{self.scope} {self.name}.{self.output}: max-abs {self.max_abs:.3g} "
            f"(limit {self.limit:.3g}), cosine {self.cosine:.6f} (min {self.min_cosine})"
        )


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a64 @ b64 / (na * nb))


def compare(scope: str, name: str, ref: Arrays, got: Arrays, tol: Tolerance) -> list[ParityRow]:
    rows = []
    for key, r in ref.items():
        g = got[key]
        if g.shape != r.shape:
            rows.append(ParityRow(scope, name, key, float("inf"), 0.0, 0.0, 0.0, tol.min_cosine))
            continue
        if r.size == 0:
            continue
        if r.dtype.kind in "iub":  # indices, masks: must match exactly
            err = float(np.count_nonzero(r != g))
            rows.append(ParityRow(scope, name, key, err, 0.0, 1.0 if err == 0 else 0.0, 0.0, 1.0))
            continue
        r64, g64 = r.astype(np.float64), g.astype(np.float64)
        max_ref = float(np.abs(r64).max())
        err = float(np.abs(r64 - g64).max()) if np.isfinite(g64).all() else float("inf")
        rows.append(
            ParityRow(
                scope,
                name,
                key,
                err,
                max_ref,
                cosine(r, g),
                tol.atol + tol.rtol * max_ref,
                tol.min_cosine,
            )
        )
    return rows


def run_ticks(program: LoopProgram, runtime: Runtime, ticks: int, seed: int = 0) -> list[Arrays]:
    """Run ``ticks`` ticks from a fresh episode on seeded observations; return every output."""
    program.reset(seed)
    rng = np.random.default_rng(seed + 1)
    ctx = TickContext(runtime)
    outs = []
    for _ in range(ticks):
        ctx.clear()
        outs.append(program.tick(ctx, program.sample_observation(rng)))
    return outs


def tick_parity(
    program: LoopProgram, ref: Runtime, got: Runtime, tol: Tolerance, ticks: int = 3
) -> list[ParityRow]:
    """Whole-tick parity over several ticks (so carried state is checked too); worst per output."""
    a = run_ticks(program, ref, ticks)
    b = run_ticks(program, got, ticks)
    worst: dict[str, ParityRow] = {}
    for ra, rb in zip(a, b, strict=True):
        for row in compare("tick", program.name, ra, rb, tol):
            prev = worst.get(row.output)
            if prev is None or (row.max_abs - row.limit) > (prev.max_abs - prev.limit):
                worst[row.output] = row
    return list(worst.values())


def failure_line(rows: list[ParityRow], what: str) -> str | None:
    """One line naming every output over its tolerance (None: all within)."""
    bad = [r for r in rows if not r.ok]
    if not bad:
        return None
    return f"{what}: {len(bad)} output(s) over tolerance: {'; '.join(r.line() for r in bad)}"
