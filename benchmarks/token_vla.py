"""(b) The token-decoding VLA (examples/token_vla): whole-tick p50 of prefill + 6 decode steps
with the KV cache vs re-running the whole sequence every step without it, and INT8 token
agreement, all in one run on this host.

Both variants share the same weights; each is exported to FP32 ONNX and timed on onnxruntime,
round-robin in blocks in one process (plus the INT8 artifact of the cached variant). They must
decode the same tokens on every held-out tick. INT8: ``edgekit quantize`` on generated
observations (25% held out), token agreement with FP32 on the held-out ticks.

Usage: python benchmarks/token_vla.py [--hidden 256 --layers 4 --heads 8 --image 64 --text 16]
Prints a Markdown table and one JSON line; writes results/token_vla.json.
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

from edgekit.artifacts import load_artifact
from edgekit.calib import save_calibration, synthesize_for_program
from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader.torch_files import load_factory
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.compare import run_ticks
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.quantize import quantize, quantize_config
from edgekit.runtimes import OrtRuntime, default_threads

POLICY = str(Path(__file__).resolve().parents[1] / "examples" / "token_vla" / "policy.py")


def ticks_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=1).tick_ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--image", type=int, default=64, help="image side (8x8 patches)")
    ap.add_argument("--text", type=int, default=16, help="instruction tokens")
    ap.add_argument("--calib-n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=10)
    args = ap.parse_args()
    model = {k: getattr(args, k) for k in ("hidden", "layers", "heads", "vocab", "image", "text")}
    threads = default_threads()
    host = host_isa()
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); {threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        programs: dict[str, LoopProgram] = {}
        runtimes: dict[str, OrtRuntime] = {}
        calls: dict[str, dict[str, int]] = {}
        specs: dict[str, Any] = {}
        for name, cache in (("KV cache", True), ("no cache", False)):
            src = load_factory(f"{POLICY}:make_policy", kwargs={"cache": cache, **model})
            res = export_onnx(src, work / name.replace(" ", "-"), tick_checks=1)
            assert res.passed, res.failed[0].message
            specs[name] = src.spec.program
            programs[name] = build_program(src.spec.program)
            files = {n: res.out / e["file"] for n, e in res.manifest.files.items()}
            runtimes[name] = OrtRuntime(files, threads=threads)
            calls[name] = programs[name].calls_per_tick()
        prompt = programs["KV cache"].blocks[0].prompt_length  # type: ignore[attr-defined]
        cset = synthesize_for_program(programs["KV cache"], n=args.calib_n, seed=0)
        calib = work / "calib.npz"
        save_calibration(calib, cset.arrays)
        q = quantize(str(work / "KV-cache"), work / "int8",
                     quantize_config(latency_ticks=0), str(calib))  # fmt: skip
        fid = q.report["fidelity"]
        art = load_artifact(q.out)
        int8_files = {n: art.file(n) for n in art.manifest.files}
        runtimes["KV cache, INT8"] = OrtRuntime(int8_files, threads=threads)
        programs["KV cache, INT8"] = build_program(specs["KV cache"])
        same = _same_tokens(programs, runtimes, ticks=16)
        for name, rt in runtimes.items():  # warm every variant before the clock
            time_ticks(programs[name], rt, 1, 2)
        samples = round_robin(
            {n: partial(ticks_ns, programs[n], rt) for n, rt in runtimes.items()},
            args.rounds,
            args.per_round,
        )
    p50 = {n: p50_ms(s) for n, s in samples.items()}
    ratio = p50["no cache"] / p50["KV cache"]
    rows: list[dict[str, Any]] = [
        {"variant": n, "p50_ms": p50[n], "calls_per_tick": calls.get(n, calls["KV cache"]),
         "ticks_timed": len(samples[n])}
        for n in runtimes
    ]  # fmt: skip
    summary = {
        "benchmark": "token_vla",
        "cpu": host.model,
        "cpu_isa": host.name,
        "threads": threads,
        "prompt_length": prompt,
        "tokens": 7,
        "p50_ms_kv_cache": p50["KV cache"],
        "p50_ms_no_cache": p50["no cache"],
        "no_cache_over_cache": ratio,
        "cache_wins": ratio > 1,
        "same_tokens_fp32": same,
        "p50_ms_kv_cache_int8": p50["KV cache, INT8"],
        "int8_token_agreement": fid.get("token_agreement"),
        "int8_holdout_ticks": fid["holdout_ticks"],
        "int8_scheme": q.report["scheme"],
    }
    print(markdown(
        ["variant", "calls per tick", "whole-tick p50 ms", "vs KV cache"],
        [[r["variant"], ", ".join(f"{k} x{v}" for k, v in r["calls_per_tick"].items()),
          f"{r['p50_ms']:.3f}", f"{r['p50_ms'] / p50['KV cache']:.2f}x"] for r in rows],
    ))  # fmt: skip
    agree = (fid.get("token_agreement") or 0) * 100
    n_tokens = fid["holdout_ticks"] * 7
    print(f"INT8 ({q.report['scheme']}) token agreement with FP32: {agree:.1f}% of {n_tokens}")
    print(json.dumps(summary))
    settings = {**model, "rounds": args.rounds, "per_round": args.per_round,
                "calib_n": args.calib_n, "threads": threads}  # fmt: skip
    save("token_vla", [*rows, {"summary": summary}], settings)
    if not (same and ratio > 1):
        raise SystemExit("the KV cache must decode the same tokens and win")


def _same_tokens(
    programs: dict[str, LoopProgram], runtimes: dict[str, OrtRuntime], ticks: int
) -> bool:
    a = run_ticks(programs["KV cache"], runtimes["KV cache"], ticks)
    b = run_ticks(programs["no cache"], runtimes["no cache"], ticks)
    return all(np.array_equal(x["tokens"], y["tokens"]) for x, y in zip(a, b, strict=True))


if __name__ == "__main__":
    main()
