"""Render a bench report for people (the JSON report is the machine-readable form)."""

from __future__ import annotations

from edgekit.bench.api import BenchReport
from edgekit.cli.render import line, table, verdict


def print_bench(r: BenchReport) -> None:
    s = r.stats
    m = r.model
    calls = " + ".join(f"{n} x{k}" for n, k in m["calls_per_tick"].items())
    rt = r.runtime
    line(f"{m['ref']}  program {m['program']} ({calls})")
    line(
        f"target {r.target.name}: MEASURED on this host, runtime {rt['runtime']} {rt['version']}, "
        f"{rt['intra_op_threads']} threads"
        + (
            f", spinning {'on' if rt.get('allow_spinning') else 'off'}"
            if "allow_spinning" in rt
            else ""
        )
        + f", {r.ticks} ticks after {r.warmup} warm-up"
    )
    table(
        "whole-tick latency (ms)",
        ["p50", "p90", "p99", "max", "mean", "std", "jitter p99-p50", "deadline misses"],
        [
            [
                f"{s.p50:.3f}",
                f"{s.p90:.3f}",
                f"{s.p99:.3f}",
                f"{s.max:.3f}",
                f"{s.mean:.3f}",
                f"{s.std:.3f}",
                f"{s.jitter:.3f}",
                f"{s.deadline_misses}/{s.n} at {r.hz:g} Hz ({s.deadline_ms:.1f} ms)",
            ]
        ],
    )
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
    verdict(
        r.passed,
        f"{r.gate} {s.stat(r.gate):.3f} ms vs budget {r.budget_ms:.2f} ms ({r.budget_source})",
    )
