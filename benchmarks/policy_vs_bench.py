"""``edgekit.Policy.act`` vs ``edgekit bench`` on the same artifact, and the cold start of
``edgekit bench ARTIFACT`` with and without torch importable.

Policy and bench share one tick implementation (``edgekit.loop.timing.timed_tick``); this
checks that the robot-side API adds nothing measurable: both time whole ticks of the zoo's
default humanoid artifact on onnxruntime, alternating in blocks in one process, and their
p50/p99 should agree within 3%. Cold start: wall time of a fresh ``python -m edgekit bench
ARTIFACT --ticks 1 --warmup 0`` process, median of 5, once as installed and once with torch
made unimportable (as in the base install on a robot).

Usage: python benchmarks/policy_vs_bench.py [--preset default --rounds 5 --per-round 200]
Prints a Markdown table and one JSON line; writes results/policy_vs_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, save

import edgekit
from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader import load
from edgekit.loop.timing import time_ticks

NO_TORCH = """
import sys, runpy
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
sys.argv = ["edgekit", *sys.argv[1:]]
runpy.run_module("edgekit", run_name="__main__")
"""


def cold_start_s(argv: list[str], no_torch: bool, n: int) -> float:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    cmd = [sys.executable, "-c", NO_TORCH, *argv] if no_torch else [
        sys.executable, "-m", "edgekit", *argv]  # fmt: skip
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=200)
    ap.add_argument("--cold", type=int, default=5)
    args = ap.parse_args()
    host = host_isa()
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp) / "humanoid"
        export_onnx(load(f"zoo:humanoid:{args.preset}"), art)
        policy = edgekit.Policy.load(art, budget_ms=1e9)
        src = load(str(art))
        from edgekit.models import build_program
        from edgekit.runtimes import OrtRuntime, default_threads

        prog = build_program(src.spec.program)
        rt = OrtRuntime(src.files, threads=default_threads())
        obs = [prog.sample_observation(np.random.default_rng(i)) for i in range(8)]
        bench_ns: list[np.ndarray] = []
        act_ms: list[float] = []
        for _ in range(args.rounds):
            bench_ns.append(time_ticks(prog, rt, args.per_round, warmup=10).tick_ns)
            policy.reset(0)
            for i in range(args.per_round + 10):
                policy.act(obs[i % 8])
                if i >= 10:
                    act_ms.append(policy.last_ms or 0.0)
        b = np.concatenate(bench_ns) / 1e6
        a = np.asarray(act_ms)
        argv = ["bench", str(art), "--ticks", "1", "--warmup", "0"]
        cold_with = cold_start_s(argv, no_torch=False, n=args.cold)
        cold_without = cold_start_s(argv, no_torch=True, n=args.cold)
    rows = [
        [name, f"{np.percentile(x, 50):.4f}", f"{np.percentile(x, 99):.4f}"]
        for name, x in (("edgekit bench (time_ticks)", b), ("Policy.act", a))
    ]
    summary = {
        "benchmark": "policy_vs_bench",
        "cpu": host.model,
        "cpu_isa": host.name,
        "bench_p50_ms": float(np.percentile(b, 50)),
        "act_p50_ms": float(np.percentile(a, 50)),
        "p50_ratio": float(np.percentile(a, 50) / np.percentile(b, 50)),
        "bench_p99_ms": float(np.percentile(b, 99)),
        "act_p99_ms": float(np.percentile(a, 99)),
        "cold_start_s_with_torch": cold_with,
        "cold_start_s_without_torch": cold_without,
    }
    print(markdown(["path", "tick p50 ms", "tick p99 ms"], rows))
    print(f"cold start of `edgekit bench ARTIFACT --ticks 1`: {cold_with:.2f} s with torch "
          f"importable, {cold_without:.2f} s without")  # fmt: skip
    print(json.dumps(summary))
    save("policy_vs_bench", [{"summary": summary}], vars(args))


if __name__ == "__main__":
    main()
