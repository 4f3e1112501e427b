"""``edgekit bench``: a measured report, or a labelled roofline estimate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit.cli.render import line, narrow, table, verdict, warning_lines

if TYPE_CHECKING:
    from edgekit.bench.api import BenchReport
    from edgekit.bench.estimated import EstimateReport


def _host_cpu() -> str:
    from edgekit.isa import host_isa

    isa = host_isa()
    return f"{isa.model or isa.arch}, {isa.name}: {' '.join(isa.features) or '-'}"


def print_bench(r: BenchReport) -> None:
    s = r.stats
    m = r.model
    calls = " + ".join(f"{n} x{k}" for n, k in m["calls_per_tick"].items())
    rt = r.runtime
    line(f"{m['ref']}  program {m['program']} ({calls})")
    line(
        f"target {r.target.name}: MEASURED on this host ({_host_cpu()}), runtime "
        f"{rt['runtime']} {rt['version']}, "
        f"{rt['intra_op_threads']} threads"
        + (
            f", spinning {'on' if rt.get('allow_spinning') else 'off'}"
            if "allow_spinning" in rt
            else ""
        )
        + f", {r.ticks} ticks after {r.warmup} warm-up"
    )
    figures = ["p50", "p90", "p99", "max", "mean", "std", "jitter p99-p50"]
    cells = [f"{s.stat(k.split()[0]):.3f}" for k in figures]
    over = f"{s.deadline_misses}/{s.n} > {s.deadline_ms:.2f} ms"
    if narrow():  # 80 columns: the figures keep the table to themselves, whole
        table("whole-tick latency (ms)", figures, [cells])
        line(f"ticks over budget: {over}")
    else:
        table("whole-tick latency (ms)", [*figures, "ticks over budget"], [[*cells, over]])
    if s.ci95:
        line(s.ci_text())
    table(
        "per stage (per tick)",
        ["stage", "kind", "calls", "p50 ms", "mean ms", "share"],
        [
            [
                st.name,
                st.kind,
                str(st.calls),
                f"{st.p50_ms:.3f}",
                f"{st.mean_ms:.3f}",
                f"{st.share * 100:.1f}%",
            ]
            for st in r.stages
        ],
    )
    for note in r.notes:
        line(f"note: {note}")
    warning_lines(r.warnings)
    verdict(
        r.passed,
        f"{r.gate} {s.stat(r.gate):.3f} ms vs budget {r.budget_ms:.2f} ms ({r.budget_source}; "
        f"loop period {1000.0 / r.hz:.2f} ms at {r.hz:g} Hz)",
    )


def print_estimate(r: EstimateReport) -> None:
    m, e = r.model, r.estimate
    line(
        f"{m['ref']}  program {m['program']} ({_calls(m['calls_per_tick'])}) on {r.target.name} "
        f"({r.target.device}) at {e.precision.upper()}"
    )
    line(f"ESTIMATED, not measured: {r.target.name} is not this machine. Method: {e.method}.")
    table(
        "estimated network calls (roofline)",
        ["network", "calls", "ms per call", "GFLOP per call", "MB moved per call", "bound by"],
        [
            [
                c.network,
                str(c.calls),
                f"{c.ms_per_call:.3f}",
                f"{c.flops / 1e9:.3f}",
                f"{c.bytes / 1e6:.2f}",
                c.bound,
            ]
            for c in e.calls
        ],
    )
    line(
        f"estimated tick {r.tick_ms:.3f} ms = networks {e.network_ms:.3f} ms + host steps "
        f"{e.host_ms:.3f} ms (timed here)"
    )
    for note in r.notes:
        line(f"note: {note}")
    warning_lines(r.warnings)
    verdict(
        r.passed,
        f"ESTIMATED tick {r.tick_ms:.3f} ms vs budget {r.budget_ms:.2f} ms ({r.budget_source}; "
        f"loop period {1000.0 / r.hz:.2f} ms at {r.hz:g} Hz)",
    )


def _calls(calls: dict[str, int]) -> str:
    return " + ".join(f"{k} x{v}" for k, v in calls.items())
