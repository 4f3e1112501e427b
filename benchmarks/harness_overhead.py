"""(b) Harness overhead: ``edgekit bench`` tick timing vs a bare ``session.run`` loop.

Both drive the same onnxruntime session on the same inputs, in alternating blocks. The goal is
an edgekit p50 within 3% of the bare loop's.

Usage: python benchmarks/harness_overhead.py [--rounds 20] [--per-round 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, p50_ms, round_robin, save

from edgekit.export import export_onnx
from edgekit.loader import load
from edgekit.loop import LoopProgram
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, default_threads


def bare_loop(sess: Any, feeds: dict[str, np.ndarray], n: int) -> np.ndarray:
    """What a user would write: time session.run and nothing else."""
    out = np.empty(n, np.int64)
    for i in range(n):
        t0 = perf_counter_ns()
        sess.run(None, feeds)
        out[i] = perf_counter_ns() - t0
    return out


def edgekit_ticks(program: LoopProgram, rt: OrtRuntime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=0, pool=1).tick_ns


MODELS = ["zoo:humanoid:default", "zoo:vla:default"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=50)
    args = ap.parse_args()
    threads = default_threads()
    rows, table = [], []
    for ref in MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            res = export_onnx(load(ref), Path(tmp) / "a", tick_checks=0)
            (net_name,) = res.manifest.files
            onnx_file = Path(tmp) / "a" / res.manifest.files[net_name]["file"]
            src = load(str(onnx_file))  # a plain ONNX file: one call per tick, no host steps
            program = build_program(src.spec.program)
            rt = OrtRuntime(src.files, threads=threads)
            sess = rt.sessions["model"]
            program.reset(0)
            feeds = program.sample_observation(np.random.default_rng(1))

            bare = partial(bare_loop, sess, feeds)
            harness = partial(edgekit_ticks, program, rt)
            bare(10)
            harness(10)
            s = round_robin({"bare": bare, "edgekit": harness}, args.rounds, args.per_round)
        b, e = p50_ms(s["bare"]), p50_ms(s["edgekit"])
        rows.append(
            {
                "model": ref,
                "network": net_name,
                "bare_p50_ms": b,
                "edgekit_p50_ms": e,
                "overhead": e / b - 1,
                "ticks_each": int(s["bare"].size),
            }
        )
        table.append([ref, f"{b:.4f}", f"{e:.4f}", f"{(e / b - 1) * 100:+.2f}%"])
    print(
        markdown(["network", "bare session.run p50 ms", "edgekit bench p50 ms", "overhead"], table)
    )
    print(f"wrote {save('harness_overhead', rows, {'threads': threads, **vars(args)})}")


if __name__ == "__main__":
    main()
