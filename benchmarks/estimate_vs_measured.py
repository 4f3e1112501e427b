"""The roofline estimate checked on the one target that can be measured: this host.

For every zoo default: export to ONNX, measure the whole tick of the default program on
onnxruntime FP32 (p50 over all rounds), estimate it from the host's own measured GEMM
throughput, bandwidth, kernel size curves and per-op dispatch cost (``edgekit.estimate``; the
probes run again in every round, next to that round's timed ticks, since a shared machine
drifts; the median round's estimate is reported), and report the error.
Then the estimated tick of every zoo default on every target vs its default budget.

Usage: python benchmarks/estimate_vs_measured.py [--kinds vla humanoid] [--ticks 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from common import markdown, p50_ms, save

from edgekit.estimate import estimate_tick, host_machine, target_machine
from edgekit.export import export_onnx
from edgekit.loader import load
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.targets import TARGETS
from edgekit.zoo import ZOO


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", nargs="+", default=ZOO.names())
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    threads = default_threads()
    host = host_machine()
    print(f"host: {host.to_dict()}", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            src = load(f"zoo:{kind}:default")
            res = export_onnx(src, Path(tmp) / kind, tick_checks=0)
            files = {n: res.out / e["file"] for n, e in res.manifest.files.items()}
            rt = OrtRuntime(files, threads=threads)
            programs = {p: build_program(ps) for p, ps in src.spec.programs.items()}
            # probes and timed ticks interleaved, round by round: a shared machine drifts over
            # minutes, so each round's estimate comes from probes taken next to its ticks
            ests: dict[str, list[Any]] = {p: [] for p in programs}
            ns: dict[str, list[Any]] = {p: [] for p in programs}
            per_round = max(1, args.ticks // args.rounds)
            for _ in range(args.rounds):
                host_machine.cache_clear()
                host = host_machine()
                for pname, program in programs.items():
                    fresh = build_program(src.spec.programs[pname])
                    ests[pname].append(estimate_tick(files, fresh, host, "fp32", 4.0))
                    ns[pname].append(time_ticks(program, rt, per_round, warmup=1).tick_ns)
            for pname, pspec in src.spec.programs.items():
                measured = p50_ms(np.concatenate(ns[pname]))
                round_ms = [p50_ms(x) for x in ns[pname]]
                est_ms = [e.tick_ms for e in ests[pname]]
                est = ests[pname][int(np.argsort(est_ms)[len(est_ms) // 2])]  # the median one
                row = {
                    "kind": kind,
                    "program": pname,
                    "measured_ms": measured,
                    "estimated_ms": est.tick_ms,
                    "error": est.tick_ms / measured - 1,
                    "rounds": [{"measured_ms": m, "estimated_ms": e, "error": e / m - 1}
                               for m, e in zip(round_ms, est_ms, strict=True)],
                    "estimate": est.to_dict(),
                    "targets": {},
                }  # fmt: skip
                for tname, t in TARGETS.items():
                    if t.family == "cpu" or tname == "qrb5165":
                        continue
                    prec = "fp16" if t.family == "jetson" else "int8"
                    te = estimate_tick(files, build_program(pspec), target_machine(t), prec,
                                       2.0 if prec == "fp16" else 1.0)  # fmt: skip
                    row["targets"][tname] = {
                        "precision": prec,
                        "tick_ms": te.tick_ms,
                        "budget_ms": t.budget_ms(pspec.hz or src.spec.hz),
                    }
                rows.append(row)
                print(
                    f"{kind:16s} {pname:12s} measured {measured:9.3f} ms  estimated "
                    f"{est.tick_ms:9.3f} ms  error {row['error'] * 100:+6.1f}%",
                    flush=True,
                )
    path = save(
        "estimate_vs_measured", rows, {**vars(args), "threads": threads, "host": host.to_dict()}
    )
    print(
        markdown(
            ["kind", "program", "measured p50 ms", "estimated ms", "error"],
            [
                [r["kind"], r["program"], f"{r['measured_ms']:.3f}", f"{r['estimated_ms']:.3f}",
                 f"{r['error'] * 100:+.1f}%"]
                for r in rows
            ],
        )
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
