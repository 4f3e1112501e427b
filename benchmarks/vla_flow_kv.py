"""The flow-matching VLA (zoo:vla-flow): whole planning tick with the prefix's KV cache
(prefix x1 + expert xK) vs recomputing the prefix before every expert call (prefix xK +
expert xK), on onnxruntime FP32, in one process on this host.

Both variants run the same exported networks and the same program with ``n_action_steps=1``
(every tick plans, so every timed tick is a planning tick); only ``recompute_prefix`` differs.
They must give the same action chunks. Ticks are timed round-robin in blocks (``--rounds`` x
``--per-round`` per variant, after a warm-up); the figure is the median whole tick.

Usage: python benchmarks/vla_flow_kv.py [--preset default --steps 10 --rounds 3 --per-round 4]
Prints a Markdown table and one JSON line; writes results/vla_flow_kv.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, p50_ms, round_robin, save

from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader import load
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.compare import run_ticks
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.spec import ProgramSpec

VARIANTS = {"KV cache": False, "prefix recomputed per step": True}


def ticks_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=0).planning_ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=10, help="flow steps K (expert calls)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=4)
    args = ap.parse_args()
    threads = default_threads()
    host = host_isa()
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); {threads} threads")
    ref = f"zoo:vla-flow:{args.preset}"
    with tempfile.TemporaryDirectory() as tmp:
        src = load(ref)
        res = export_onnx(src, Path(tmp) / "art", tick_checks=1)
        assert res.passed, res.failed[0].message
        files = {n: res.out / e["file"] for n, e in res.manifest.files.items()}
        rt = OrtRuntime(files, threads=threads)
        base = {**src.spec.program.params, "steps": args.steps, "n_action_steps": 1}
        programs = {
            name: build_program(ProgramSpec("vla-flow", {**base, "recompute_prefix": flag}))
            for name, flag in VARIANTS.items()
        }
        calls = {name: p.calls_per_tick() for name, p in programs.items()}
        a, b = (run_ticks(p, rt, 2) for p in programs.values())
        worst = max(
            float(np.abs(x["action_chunk"] - y["action_chunk"]).max())
            for x, y in zip(a, b, strict=True)
        )
        for p in programs.values():  # warm both before the clock
            time_ticks(p, rt, 1, 1)
        samples = round_robin(
            {n: partial(ticks_ns, p, rt) for n, p in programs.items()}, args.rounds, args.per_round
        )
    p50 = {n: p50_ms(s) for n, s in samples.items()}
    cached, recomputed = (p50[n] for n in VARIANTS)
    rows: list[dict[str, Any]] = [
        {"variant": n, "median_ms": p50[n], "calls_per_tick": calls[n], "ticks_timed": len(s)}
        for n, s in samples.items()
    ]
    summary = {
        "benchmark": "vla_flow_kv",
        "model": ref,
        "cpu": host.model,
        "cpu_isa": host.name,
        "cpu_features": list(host.features),
        "threads": threads,
        "steps": args.steps,
        "median_ms_kv_cache": cached,
        "median_ms_recomputed": recomputed,
        "recomputed_over_cache": recomputed / cached,
        "max_abs_chunk_difference": worst,
    }
    print(markdown(
        ["variant", "calls per planning tick", "whole-tick median ms", "vs KV cache"],
        [[r["variant"], ", ".join(f"{k} x{v}" for k, v in r["calls_per_tick"].items()),
          f"{r['median_ms']:.2f}", f"{r['median_ms'] / cached:.2f}x"] for r in rows],
    ))  # fmt: skip
    print(f"same chunks: max |difference| {worst:.2e}")
    print(json.dumps(summary))
    settings = {"preset": args.preset, "steps": args.steps, "rounds": args.rounds,
                "per_round": args.per_round, "threads": threads}  # fmt: skip
    save("vla_flow_kv", [*rows, {"summary": summary}], settings)
    if worst > 1e-4:
        raise SystemExit("the cached and recomputed ticks must give the same actions")


if __name__ == "__main__":
    main()
