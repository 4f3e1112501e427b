"""Latency statistics as data (optimum-benchmark's ``Latency``): built from raw samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Whole-tick latency over N ticks, in milliseconds, with deadline misses."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    min: float
    mean: float
    std: float
    jitter: float  # p99 - p50: what makes a humanoid shake, more than the mean
    deadline_ms: float
    deadline_misses: int

    @classmethod
    def from_ns(cls, samples_ns: list[int] | np.ndarray, deadline_ms: float) -> LatencyStats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        if ms.size == 0:
            raise ValueError("no samples")
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(
            n=int(ms.size),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            max=float(ms.max()),
            min=float(ms.min()),
            mean=float(ms.mean()),
            std=float(ms.std()),
            jitter=float(p99 - p50),
            deadline_ms=deadline_ms,
            deadline_misses=int(np.count_nonzero(ms > deadline_ms)),
        )

    def stat(self, name: str) -> float:
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
