"""The roofline estimate checked on the one target that can be measured: this host.

For every zoo default: export to ONNX, measure the whole tick of the default program on
onnxruntime FP32 (p50, round-robin blocks), estimate it from the host's own measured GEMM
throughput, bandwidth and per-op dispatch cost (``edgekit.estimate``; probed again right before
each model, since a shared machine drifts), and report the error.
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

from common import markdown, p50_ms, round_robin, save

from edgekit.bench.runner import time_ticks
from edgekit.estimate import estimate_tick, host_machine, target_machine
from edgekit.export import export_onnx
from edgekit.loader import load
from edgekit.loop import build_program
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.targets import TARGETS
from edgekit.zoo import ZOO


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", nargs="+", default=ZOO.names())
    ap.add_argument("--ticks", type=int, default=30)
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
            # probe the host right before measuring this model: a shared machine's memory
            # bandwidth drifts over minutes, and the probes should see the same machine state
            host_machine.cache_clear()
            host = host_machine()
            for pname, pspec in src.spec.programs.items():
                program = build_program(pspec)
                n = max(1, args.ticks // 3)
                ns = round_robin(
                    {"m": lambda k, p=program, r=rt: time_ticks(p, r, k, warmup=1).tick_ns}, 3, n
                )
                measured = p50_ms(ns["m"])
                est = estimate_tick(files, build_program(pspec), host, "fp32", 4.0)
                row = {
                    "host": host.to_dict(),
                    "kind": kind,
                    "program": pname,
                    "measured_ms": measured,
                    "estimated_ms": est.tick_ms,
                    "error": est.tick_ms / measured - 1,
                    "estimate": est.to_dict(),
                    "targets": {},
                }
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
