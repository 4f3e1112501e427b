"""The statistics of closed-loop evaluation, from scipy: intervals and the paired comparison.

* Success rate: Wilson score interval (``binomtest(k, n).proportion_ci(method="wilson")``), and
  the Clopper-Pearson "exact" interval next to it (never under 95% coverage, wider).
* Mean return: Student t interval (n - 1 degrees of freedom), not the normal approximation.
* Teacher vs candidate: both run the SAME seeded episodes (episode i resets the simulator and
  the noise with ``seed + i``), so they are compared pair by pair. Success: exact McNemar
  test, a binomial test on the discordant pairs (teacher succeeded and the candidate did not,
  or the other way): under "equally good" each discordant pair goes either way with
  probability 1/2. Return: paired t test and Wilcoxon signed-rank test on the differences.

The success gate itself stays the ratio of the two success rates; the paired test is reported
next to it ("not significantly worse, McNemar p=...") and does not change what passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

LEVEL = 0.95
ALPHA = 1.0 - LEVEL


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a success rate k/n (sound at 0/n and n/n); (0, 1) for n = 0."""
    return _proportion_ci(k, n, "wilson", level)


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Clopper-Pearson ("exact") interval of a success rate k/n; (0, 1) for n = 0."""
    return _proportion_ci(k, n, "exact", level)


def _proportion_ci(k: int, n: int, method: str, level: float) -> tuple[float, float]:
    from scipy.stats import binomtest

    if n == 0:
        return 0.0, 1.0
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method=method)
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def t_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student t interval of the mean of ``values`` (the mean itself for fewer than 2)."""
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return 0.0, 0.0
    mean = float(x.mean())
    if x.size < 2:
        return mean, mean
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    if sem == 0.0:
        return mean, mean
    lo, hi = t.interval(level, x.size - 1, loc=mean, scale=sem)
    return float(lo), float(hi)


def mcnemar_exact(teacher_only: int, candidate_only: int) -> dict[str, Any]:
    """Exact McNemar test on the discordant pairs of paired successes.

    Args:
        teacher_only: Episodes the teacher succeeded in and the candidate failed.
        candidate_only: Episodes the candidate succeeded in and the teacher failed.

    Returns:
        ``p_value`` (two-sided: any difference) and ``p_worse`` (one-sided: the candidate
        succeeds less often), both 1.0 when no pair is discordant (no evidence either way).
    """
    from scipy.stats import binomtest

    b, c = int(teacher_only), int(candidate_only)
    if b + c == 0:
        return {"discordant": 0, "p_value": 1.0, "p_worse": 1.0}
    return {
        "discordant": b + c,
        "p_value": float(binomtest(b, b + c, 0.5).pvalue),
        "p_worse": float(binomtest(b, b + c, 0.5, alternative="greater").pvalue),
    }


def paired_returns(teacher: Sequence[float], candidate: Sequence[float]) -> dict[str, Any]:
    """Candidate minus teacher return per paired episode: mean, t interval, and two tests.

    ``t_test_p`` (paired t test, scipy.stats.ttest_rel) and ``wilcoxon_p`` (signed-rank test,
    zero differences dropped) are two-sided; None where the test is undefined (fewer than two
    pairs, or every difference equal, when a t statistic has no spread to divide by).
    """
    from scipy.stats import ttest_rel, wilcoxon

    t = np.asarray(teacher, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    d = c - t
    out: dict[str, Any] = {
        "mean_difference": float(d.mean()) if d.size else 0.0,
        "difference_ci95": list(t_interval(d)),
        "t_test_p": None,
        "wilcoxon_p": None,
    }
    # differences equal up to rounding: a t statistic divides by their (zero) spread
    spread = float(np.ptp(d)) if d.size else 0.0
    if d.size >= 2 and spread > 1e-9 * max(1.0, float(np.abs(d).max())):
        out["t_test_p"] = float(ttest_rel(c, t).pvalue)
    if d.size >= 2 and np.count_nonzero(d) >= 1:
        out["wilcoxon_p"] = float(wilcoxon(d).pvalue)
    elif d.size >= 2:  # every pair equal: no evidence of any difference
        out["t_test_p"] = out["wilcoxon_p"] = 1.0
    return out


def paired_comparison(teacher: Any, candidate: Any) -> dict[str, Any] | None:
    """Compare two :class:`~edgekit.eval.runner.PolicyEval` runs episode by episode.

    Episodes are paired by seed; None when the runs share no seed (not the same episodes).
    """
    by_seed = {e.seed: e for e in teacher.episodes}
    pairs = [(by_seed[e.seed], e) for e in candidate.episodes if e.seed in by_seed]
    if not pairs:
        return None
    both = sum(t.success and c.success for t, c in pairs)
    t_only = sum(t.success and not c.success for t, c in pairs)
    c_only = sum(c.success and not t.success for t, c in pairs)
    neither = len(pairs) - both - t_only - c_only
    test = mcnemar_exact(t_only, c_only)
    worse = test["p_worse"] < ALPHA
    return {
        "episodes": len(pairs),
        "paired_by": "seed: both policies ran the same seeded episodes",
        "success": {
            "both": both,
            "teacher_only": t_only,
            "candidate_only": c_only,
            "neither": neither,
            "test": "exact McNemar: binomial test on the discordant pairs (scipy.stats.binomtest)",
            **test,
            "significantly_worse": worse,
        },
        "return": {
            "difference": "candidate - teacher, per episode",
            "tests": "paired t test (scipy.stats.ttest_rel), Wilcoxon signed-rank",
            **paired_returns([t.ret for t, _ in pairs], [c.ret for _, c in pairs]),
        },
        "summary": significance_text(worse, test["p_worse"], t_only, c_only),
    }


def significance_text(worse: bool, p_worse: float, teacher_only: int, candidate_only: int) -> str:
    """``not significantly worse (McNemar p=0.50, one-sided; 1 vs 0 discordant episodes)``."""
    verdict = "significantly worse" if worse else "not significantly worse"
    return (
        f"{verdict} (McNemar p={p_worse:.3g}, one-sided; discordant episodes: teacher only "
        f"{teacher_only}, candidate only {candidate_only})"
    )
