"""Latency statistics as data (optimum-benchmark's ``Latency``): built from raw samples.

Tail percentiles come with their sample count and a distribution-free 95% confidence interval:
the number of ticks at or under the true q-quantile is Binomial(n, q), so two order statistics
whose ranks are that distribution's 2.5% and 97.5% points bracket the quantile with at least 95%
confidence whatever the latency distribution (:func:`quantile_ci`). At n = 200 the 97.5% point of
Binomial(200, 0.99) is 200: no tick is slow enough to bound p99 from above, and the interval
reaches the slowest tick. Then ``ci95_reaches_max`` names p99 and ``ci95_min_ticks`` says how
many ticks would bound it below the slowest one. The interval treats ticks as independent draws;
drift or periodic spikes (see the tick-index plot of ``edgekit run``) make it optimistic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
CI_LEVEL = 0.95
CI_METHOD = (
    "distribution-free order-statistic interval: the ticks at ranks given by the 2.5% and 97.5% "
    "points of Binomial(n, q) (scipy.stats.binom), coverage >= 95% for independent ticks"
)


@dataclass(frozen=True)
class QuantileCI:
    """A confidence interval of the q-quantile from the order statistics of n samples.

    ``lower_rank`` / ``upper_rank`` are 1-based ranks in the sorted samples; 0 means below the
    fastest sample and n + 1 above the slowest (the data cannot bound that side: ``low`` /
    ``high`` are then the min / max and ``coverage`` says how sure the clipped interval is).
    """

    q: float
    n: int
    low: float
    high: float
    lower_rank: int
    upper_rank: int
    coverage: float  # probability that [low, high] holds the true quantile (independent samples)

    @property
    def reaches_max(self) -> bool:
        """The upper end is the slowest sample (or beyond it): too few samples for this q."""
        return self.upper_rank >= self.n


def _ranks(n: int, q: float, level: float) -> tuple[int, int]:
    from scipy.stats import binom

    tail = (1.0 - level) / 2
    low = int(binom.ppf(tail, n, q))  # P(B < low) < tail: x_(low) <= quantile w.p. > 1 - tail
    high = int(binom.ppf(1.0 - tail, n, q)) + 1  # P(B >= high) <= tail
    return low, high


def quantile_ci(samples: np.ndarray | list[float], q: float, level: float = CI_LEVEL) -> QuantileCI:
    """Distribution-free confidence interval of the ``q``-quantile of ``samples``.

    Args:
        samples: The measurements (any order).
        q: The quantile, in (0, 1): 0.99 for p99.
        level: Confidence level of the two-sided interval.

    Returns:
        The interval between two order statistics, with its ranks and exact coverage.

    Raises:
        ValueError: No samples, or q outside (0, 1).
    """
    from scipy.stats import binom

    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    n = int(ordered.size)
    if n == 0:
        raise ValueError("no samples")
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile {q} outside (0, 1)")
    lo_rank, hi_rank = _ranks(n, q, level)
    # B ~ Binomial(n, q) samples at or under the quantile: x_(l) <= it <=> B >= l, and
    # x_(u) >= it <=> B <= u - 1; a rank off the data is clipped to the min / max.
    lo_used, hi_used = max(lo_rank, 1), min(hi_rank, n)
    coverage = float(binom.cdf(hi_used - 1, n, q) - binom.cdf(lo_used - 1, n, q))
    return QuantileCI(
        q, n, float(ordered[lo_used - 1]), float(ordered[hi_used - 1]), lo_rank, hi_rank, coverage
    )


def min_samples_below_max(q: float, level: float = CI_LEVEL) -> int:
    """The fewest samples for which the ``level`` interval of the ``q``-quantile ends below the
    slowest sample (555 for p99 at 95%: a 200-tick bench cannot bound its p99 below its max)."""
    from scipy.stats import binom

    tail = (1.0 - level) / 2

    def enough(n: int) -> bool:  # upper rank <= n - 1  <=>  P(B >= n - 1) <= tail
        return bool(binom.sf(n - 2, n, q) <= tail)

    high = 2
    while not enough(high):
        high *= 2
    low = high // 2
    while high - low > 1:  # enough() is monotone in n past its first True
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


@dataclass(frozen=True)
class LatencyStats:
    """Whole-tick latency over N ticks, in milliseconds, with deadline misses.

    ``ci95`` holds ``[low, high]`` per percentile (:func:`quantile_ci`), ``ci95_coverage`` the
    exact coverage of each, ``ci95_reaches_max`` the percentiles whose upper end is the slowest
    tick (n too small for that percentile) and ``ci95_min_ticks`` the ticks each of those needs.
    """

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
    ci95: dict[str, list[float]] = field(default_factory=dict)
    ci95_coverage: dict[str, float] = field(default_factory=dict)
    ci95_reaches_max: list[str] = field(default_factory=list)
    ci95_min_ticks: dict[str, int] = field(default_factory=dict)
    ci_method: str = CI_METHOD

    @classmethod
    def from_ns(cls, samples_ns: list[int] | np.ndarray, deadline_ms: float) -> LatencyStats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        if ms.size == 0:
            raise ValueError("no samples")
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        cis = {name: quantile_ci(ms, q) for name, q in PERCENTILES}
        reach = [name for name, ci in cis.items() if ci.reaches_max]
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
            ci95={name: [ci.low, ci.high] for name, ci in cis.items()},
            ci95_coverage={name: ci.coverage for name, ci in cis.items()},
            ci95_reaches_max=reach,
            ci95_min_ticks={name: min_samples_below_max(cis[name].q) for name in reach},
        )

    def stat(self, name: str) -> float:
        return float(getattr(self, name))

    def ci_text(self) -> str:
        """One line for people: each percentile's interval and what n cannot bound."""
        parts = []
        for name, (lo, hi) in self.ci95.items():
            top = f"{hi:.3f} (max)" if name in self.ci95_reaches_max else f"{hi:.3f}"
            parts.append(f"{name} [{lo:.3f}, {top}]")
        text = f"95% CI (order statistics, n={self.n}): " + ", ".join(parts)
        for name in self.ci95_reaches_max:
            text += (
                f"; {self.n} ticks are too few to bound {name} below the slowest tick "
                f"(covers {self.ci95_coverage[name] * 100:.0f}%; needs >= "
                f"{self.ci95_min_ticks[name]} ticks)"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
