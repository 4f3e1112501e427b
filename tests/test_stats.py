"""The statistics of bench and eval: intervals equal scipy's and textbook values, the p99
interval at n = 200 reaches the slowest tick, the paired teacher-vs-candidate test.

Pure numbers on hand-built inputs: no model, no simulator.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from edgekit.bench.stats import LatencyStats, min_samples_below_max, quantile_ci
from edgekit.eval.api import EvalResult
from edgekit.eval.config import EvalConfig
from edgekit.eval.runner import Episode, PolicyEval
from edgekit.eval.stats import (
    clopper_pearson,
    mcnemar_exact,
    paired_comparison,
    paired_returns,
    t_interval,
    wilson,
)

# --- tail percentiles ------------------------------------------------------------------------


def test_median_interval_of_20_is_the_textbook_ranks():
    # The classic table (e.g. Conover, Practical Nonparametric Statistics): n = 20, the 95%
    # interval of the median is [x(6), x(15)] with coverage 0.9586.
    ci = quantile_ci(np.arange(1.0, 21.0), 0.5)
    assert (ci.lower_rank, ci.upper_rank) == (6, 15)
    assert (ci.low, ci.high) == (6.0, 15.0)
    assert ci.coverage == pytest.approx(0.9586, abs=1e-4)
    assert not ci.reaches_max


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_interval_ranks_come_from_scipy_binom(q):
    n = 1000
    samples = np.random.default_rng(1).permutation(np.arange(n, dtype=float))  # x(k) = k - 1
    ci = quantile_ci(samples, q)
    lo = int(sps.binom.ppf(0.025, n, q))
    hi = int(sps.binom.ppf(0.975, n, q)) + 1
    assert (ci.lower_rank, ci.upper_rank) == (lo, hi)
    assert (ci.low, ci.high) == (lo - 1.0, hi - 1.0)  # order statistics, not interpolated
    assert ci.coverage == pytest.approx(sps.binom.cdf(hi - 1, n, q) - sps.binom.cdf(lo - 1, n, q))
    assert ci.coverage >= 0.95 and not ci.reaches_max


def test_p99_interval_at_200_ticks_reaches_the_max():
    ms = np.random.default_rng(0).lognormal(np.log(0.2), 0.3, 200)
    ci = quantile_ci(ms, 0.99)
    # Binomial(200, 0.99)'s 97.5% point is 200: no tick bounds p99 from above
    assert ci.upper_rank == 201 and ci.reaches_max
    assert ci.high == ms.max()
    assert ci.coverage == pytest.approx(0.85, abs=0.01)  # [x(195), max] covers p99 only 85%
    s = LatencyStats.from_ns(ms * 1e6, deadline_ms=20.0)
    assert s.n == 200
    assert s.ci95["p99"] == [ci.low, ci.high] and s.ci95["p99"][1] == pytest.approx(s.max)
    assert s.ci95_reaches_max == ["p99"]
    assert s.ci95_min_ticks == {"p99": 555}
    assert s.ci95["p50"][0] <= s.p50 <= s.ci95["p50"][1]
    assert s.ci95["p90"][0] <= s.p90 <= s.ci95["p90"][1]
    text = s.ci_text()
    assert "n=200" in text and "too few to bound p99" in text and ">= 555 ticks" in text
    d = s.to_dict()  # the bench report's stats_ms gains these keys
    assert {"ci95", "ci95_coverage", "ci95_reaches_max", "ci95_min_ticks", "ci_method"} <= set(d)


def test_enough_ticks_bound_p99_below_the_max():
    ms = np.random.default_rng(2).lognormal(0.0, 0.3, 1000)
    s = LatencyStats.from_ns(ms * 1e6, deadline_ms=100.0)
    assert s.ci95_reaches_max == [] and s.ci95_min_ticks == {}
    assert s.ci95["p99"][1] < s.max and s.ci95_coverage["p99"] >= 0.95
    assert "too few" not in s.ci_text()


def test_min_samples_below_max_is_the_first_n_that_works():
    for q, expected in ((0.5, 9), (0.9, 54), (0.99, 555)):
        n = min_samples_below_max(q)
        assert n == expected
        assert not quantile_ci(np.arange(float(n)), q).reaches_max
        assert quantile_ci(np.arange(float(n - 1)), q).reaches_max


def test_quantile_ci_coverage_on_a_known_distribution():
    # exponential(1): the true p90 is ln 10; 400 seeded runs of 100 samples each
    rng = np.random.default_rng(3)
    truth = math.log(10.0)
    hits = sum(
        ci.low <= truth <= ci.high
        for ci in (quantile_ci(rng.exponential(size=100), 0.9) for _ in range(400))
    )
    assert hits / 400 >= 0.93  # nominal >= 95%; 400 runs leave ~1 point of noise


def test_quantile_ci_refuses_nothing_and_bad_q():
    with pytest.raises(ValueError, match="no samples"):
        quantile_ci([], 0.5)
    with pytest.raises(ValueError, match="outside"):
        quantile_ci([1.0], 1.0)


# --- success and return intervals ------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 10), (8, 10), (10, 10), (13, 20), (1, 50)])
def test_success_intervals_equal_scipy(k, n):
    test = sps.binomtest(k, n)
    assert wilson(k, n) == pytest.approx(tuple(test.proportion_ci(method="wilson")))
    assert clopper_pearson(k, n) == pytest.approx(tuple(test.proportion_ci(method="exact")))


def test_success_intervals_textbook_values():
    # 8/10: Wilson (0.490, 0.943), Clopper-Pearson (0.444, 0.975)
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert clopper_pearson(8, 10) == pytest.approx((0.4439, 0.9748), abs=1e-4)
    # 0/n: Clopper-Pearson's upper end is 1 - 0.025^(1/n) (the "rule of three" region)
    assert clopper_pearson(0, 20) == pytest.approx((0.0, 1 - 0.025 ** (1 / 20)))
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0) == clopper_pearson(0, 0)


def test_return_interval_is_student_t():
    r = np.random.default_rng(4).normal(10.0, 2.0, 20)
    lo, hi = t_interval(r)
    sem = r.std(ddof=1) / math.sqrt(20)
    assert (lo, hi) == pytest.approx(sps.t.interval(0.95, 19, loc=r.mean(), scale=sem))
    # t(0.975, 19 df) = 2.093 (any t table): wider than the normal 1.96 at n = 20
    assert (hi - lo) / 2 == pytest.approx(2.093 * sem, rel=1e-3)
    assert t_interval([3.0]) == (3.0, 3.0) and t_interval([2.0, 2.0]) == (2.0, 2.0)


def test_policy_eval_report_keys():
    ev = PolicyEval("m", [Episode(i, i < 8, float(i), None, 50, 7) for i in range(10)])
    d = ev.to_dict()
    assert d["success_ci_method"] == "Wilson score interval"
    assert d["success_ci95"] == pytest.approx([0.4902, 0.9433], abs=1e-4)
    assert d["success_ci95_exact"] == pytest.approx([0.4439, 0.9748], abs=1e-4)
    assert d["return_ci95"] == pytest.approx(list(t_interval(np.arange(10.0))))
    assert "Student t" in d["return_ci_method"]


# --- the paired teacher-vs-candidate test ----------------------------------------------------


def test_exact_mcnemar_textbook():
    # 7 discordant pairs one way, 1 the other: two-sided p = 2 * 9/256, one-sided 9/256
    r = mcnemar_exact(7, 1)
    assert r["p_value"] == pytest.approx(18 / 256) and r["p_worse"] == pytest.approx(9 / 256)
    assert mcnemar_exact(0, 0) == {"discordant": 0, "p_value": 1.0, "p_worse": 1.0}
    assert mcnemar_exact(1, 7)["p_worse"] == pytest.approx(1 - 1 / 256)


def _run(ref: str, success: list[bool], returns: list[float], seed: int = 0) -> PolicyEval:
    pairs = enumerate(zip(success, returns, strict=True))
    eps = [Episode(seed + i, s, r, None, 50, 7) for i, (s, r) in pairs]
    return PolicyEval(ref, eps, [0.2] * 10)


def test_paired_comparison_on_constructed_episodes():
    teacher = _run("t", [True] * 20, [-3.0 - 0.25 * i for i in range(20)])
    lost = [True] * 15 + [False] * 5  # the candidate fails 5 episodes the teacher solved
    cand = _run("c", lost, [-3.5 - 0.25 * i for i in range(20)])  # exactly 0.5 less
    p = paired_comparison(teacher, cand)
    assert p is not None and p["episodes"] == 20
    s = p["success"]
    assert (s["both"], s["teacher_only"], s["candidate_only"], s["neither"]) == (15, 5, 0, 0)
    assert s["p_worse"] == pytest.approx(0.5**5) and s["significantly_worse"] is True
    assert s["p_value"] == pytest.approx(2 * 0.5**5)
    assert p["summary"].startswith("significantly worse (McNemar p=0.0312")
    r = p["return"]
    assert r["mean_difference"] == pytest.approx(-0.5)
    assert r["t_test_p"] is None  # every difference is -0.5: no spread for a t statistic
    assert r["wilcoxon_p"] == pytest.approx(sps.wilcoxon(np.full(20, -0.5)).pvalue)

    mixed = _run("c", [True] * 18 + [False, True], [-3.0] * 20)
    teacher2 = _run("t", [True] * 18 + [True, False], [-3.0 + 0.01 * i for i in range(20)])
    p2 = paired_comparison(teacher2, mixed)
    assert p2 is not None
    assert (p2["success"]["teacher_only"], p2["success"]["candidate_only"]) == (1, 1)
    assert (
        p2["success"]["p_worse"] == pytest.approx(0.75) and not p2["success"]["significantly_worse"]
    )
    assert p2["summary"].startswith("not significantly worse (McNemar p=0.75")


def test_paired_returns_equal_scipy():
    rng = np.random.default_rng(5)
    t = rng.normal(-3.0, 1.0, 20)
    c = t + rng.normal(-0.2, 0.3, 20)
    r = paired_returns(t, c)
    assert r["t_test_p"] == pytest.approx(sps.ttest_rel(c, t).pvalue)
    assert r["wilcoxon_p"] == pytest.approx(sps.wilcoxon(c - t).pvalue)
    assert r["difference_ci95"] == pytest.approx(list(t_interval(c - t)))
    same = paired_returns(t, t)
    assert same["t_test_p"] == 1.0 and same["wilcoxon_p"] == 1.0


def test_episodes_pair_by_seed_only():
    assert paired_comparison(_run("t", [True], [0.0], 0), _run("c", [True], [0.0], 5)) is None


def test_ratio_gate_unchanged_and_significance_reported():
    teacher = _run("t", [True] * 20, [0.0] * 20)
    cand = _run("c", [True] * 15 + [False] * 5, [0.0] * 20)
    # ratio 0.75 passes a 0.7 gate even though the paired test calls it significantly worse:
    # the gate is the ratio, the test is evidence next to it
    res = EvalResult(cand, teacher, {}, EvalConfig(min_success_ratio=0.7))
    (gate,) = res.gates
    assert gate.status == "passed" and gate.value == pytest.approx(0.75)
    assert "significantly worse (McNemar p=0.0312" in gate.method
    # and a ratio miss that the paired test cannot tell from chance says so
    few = _run("c", [True] * 19 + [False], [0.0] * 20)
    strict = EvalResult(few, teacher, {}, EvalConfig(min_success_ratio=1.0))
    (gate,) = strict.gates
    assert gate.status == "failed" and not strict.passed
    assert gate.message.startswith("success ratio 0.950")
    assert "not significantly worse (McNemar p=0.5" in gate.message
    assert EvalResult(cand, None, {}, EvalConfig()).paired is None


# --- what bench reports and shows ------------------------------------------------------------


class _ChunkQueue:
    """A loop program whose network runs every 4th tick (an action-chunk queue)."""

    name = "chunk-queue"

    def reset(self, seed: int) -> None:
        self.i = 0

    def sample_observation(self, rng):
        return {"x": np.zeros(1, np.float32)}

    def observation_spec(self):
        return []

    def calls_per_tick(self):
        return {"net": 1}

    def tick(self, ctx, obs):
        if self.i % 4 == 0:
            ctx.call("net", obs)
        self.i += 1
        return {}


class _Runtime:
    name = "none"

    def run(self, network, feeds):
        return {}


def test_time_ticks_keeps_warmup_and_planning_ticks():
    from edgekit.loop.timing import time_ticks

    s = time_ticks(_ChunkQueue(), _Runtime(), ticks=12, warmup=5)
    assert s.warmup_ns.shape == (5,) and (s.warmup_ns > 0).all()
    assert s.tick_ns.shape == (12,)
    assert np.flatnonzero(s.planned).tolist() == [0, 4, 8]  # timed ticks restart the episode


def test_bench_reports_and_shows_tail_intervals(cli, humanoid_artifact, tmp_path):
    out = tmp_path / "bench.json"
    r = cli("bench", humanoid_artifact, "--ticks", "200", "--warmup", "3", "--budget-ms", "1e4",
            "--json", out)  # fmt: skip
    assert r.code == 0, r.err
    assert "95% CI (order statistics, n=200): p50 [" in r.out
    assert "200 ticks are too few to bound p99 below the slowest tick" in r.out
    report = json.loads(out.read_text())
    stats = report["stats_ms"]
    assert stats["n"] == 200 and stats["ci95_reaches_max"] == ["p99"]
    assert stats["ci95"]["p99"][1] == stats["max"]
    assert len(report["warmup_samples_ms"]) == 3 and report["planning_ticks"] is None


def test_eval_output_shows_the_paired_test(capsys, monkeypatch):
    from edgekit.cli.render.eval import print_eval

    monkeypatch.setenv("CI", "true")
    teacher = _run("t", [True] * 20, [float(i) for i in range(20)])
    cand = _run("c", [True] * 15 + [False] * 5, [float(i) - 1.0 for i in range(20)])
    res = EvalResult(cand, teacher, {}, EvalConfig(min_success_ratio=0.7))
    res.report = {
        "task": {"name": "reacher", "env": "Reacher-v5", "commands": "torque"},
        "episodes": 20, "seed": 0, "candidate": cand.to_dict(), "teacher": teacher.to_dict(),
        "paired": res.paired, "gate": {"min_success_ratio": 0.7},
    }  # fmt: skip
    print_eval(res)
    out = capsys.readouterr().out
    assert "paired on the same 20 seeds: success significantly worse (McNemar p=0.0312" in out
    assert "paired return difference (candidate - teacher) -1.00 [-1.00, -1.00]" in out
    assert "verdict: PASS  success ratio 0.750 (gate >= 0.7)" in out  # the ratio decides


def test_a_gate_against_a_teacher_that_never_succeeds_says_why_it_cannot_pass():
    from edgekit.eval.api import EvalResult
    from edgekit.eval.config import EvalConfig

    def failing(ref: str) -> PolicyEval:
        return PolicyEval(ref, [Episode(i, False, -1.0, None, 50, 50) for i in range(4)])

    result = EvalResult(failing("cand"), failing("teacher"), {}, EvalConfig(episodes=4,
                        min_success_ratio=0.9))  # fmt: skip
    (gate,) = result.gates
    assert not result.passed and gate.status == "failed"
    assert "n/a" not in gate.message
    assert gate.message.startswith(
        "success ratio undefined: the teacher succeeded in none of 4 episodes (candidate 0/4)"
    )
