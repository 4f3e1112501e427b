"""Quantization policy for the flow-matching VLA (zoo:vla-flow): whole-tick fidelity and speed
of all-INT8, INT8 prefix + FP32 action expert, and mixed precision to a budget, vs FP32, on
this CPU, in one process.

Each variant is made by ``edgekit.quantize`` (the same calibration data, the same held-out
ticks): its fidelity is the report's worst whole-tick relative L2 vs FP32 over every loop
program's outputs. Speed: the default program with ``n_action_steps=1`` (every tick plans:
prefix x1 + expert xK), FP32 and the variants timed round-robin in blocks (``--rounds`` x
``--per-round`` per variant, after a warm-up); the figure is the median planning tick.

Calibration: ``--calib FILE`` (e.g. from ``python calib_data/make_calib.py --presets default
--kinds vla-flow``), else generated observations (``synthesize_for_program``, ``--calib-n``),
as benchmarks/quantize_compare.py does.

Usage: python benchmarks/vla_quant.py [--preset default --budget 0.02 --rounds 3 --per-round 4]
Prints the host's CPU and ISA flags, a Markdown table and one JSON line; writes
results/vla_quant.json (results/vla_quant-PRESET.json for other presets).
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
from edgekit.loader import load
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.quantize import Int8Config, MixedConfig, quantize
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.spec import ProgramSpec


def ticks_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=0).planning_ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--calib", default=None, help="calibration .npz (default: generated)")
    ap.add_argument("--calib-n", type=int, default=48)
    ap.add_argument("--budget", type=float, default=0.02, help="mixed-precision error budget")
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=4)
    args = ap.parse_args()
    threads = default_threads()
    host = host_isa()
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); {threads} threads")
    ref = f"zoo:vla-flow:{args.preset}"
    src = load(ref)
    variants: dict[str, Any] = {
        "all INT8": Int8Config(target=args.target, latency_ticks=0),
        "INT8 prefix + FP32 expert": Int8Config(
            target=args.target, latency_ticks=0, keep_float=["expert"]
        ),
        f"mixed at {args.budget:g}": MixedConfig(
            target=args.target, latency_ticks=0, max_error=args.budget
        ),
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        calib = Path(args.calib) if args.calib else work / "calib.npz"
        if not args.calib:
            program = build_program(src.spec.program)
            save_calibration(calib, synthesize_for_program(program, n=args.calib_n, seed=0).arrays)
        res = export_onnx(src, work / "fp32", tick_checks=0)
        files = {n: res.out / e["file"] for n, e in res.manifest.files.items()}
        runtimes: dict[str, OrtRuntime] = {"FP32": OrtRuntime(files, threads=threads)}
        reports: dict[str, dict[str, Any]] = {}
        for i, (name, config) in enumerate(variants.items()):
            print(f"quantizing: {name}", flush=True)
            r = quantize(src, work / f"q{i}", config, str(calib))
            if not r.passed:
                print(f"{name}: missed its gate ({r.error * 100:.2f}%), not timed")
                reports[name] = r.report
                continue
            art = load_artifact(r.out)
            runtimes[name] = OrtRuntime(
                {n: art.file(n) for n in art.manifest.files}, threads=threads
            )
            reports[name] = r.report
        timed = build_program(
            ProgramSpec("vla-flow", {**src.spec.program.params, "n_action_steps": 1})
        )
        for rt in runtimes.values():  # warm every variant before the clock
            time_ticks(timed, rt, 1, 1)
        samples = round_robin(
            {n: partial(ticks_ns, timed, rt) for n, rt in runtimes.items()},
            args.rounds,
            args.per_round,
        )
    p50 = {n: p50_ms(s) for n, s in samples.items()}
    base = p50["FP32"]
    rows.append({"variant": "FP32", "median_ms": base, "speedup_vs_fp32": 1.0, "rel_l2": 0.0})
    for name, rep in reports.items():
        chosen = rep["extra"].get("chosen", {})
        rows.append(
            {
                "variant": name,
                "median_ms": p50.get(name),
                "speedup_vs_fp32": base / p50[name] if name in p50 else None,
                "rel_l2": rep["fidelity"]["worst_rel_l2"],
                "passed": rep["fidelity"]["passed"],
                "kept_float": rep["kept_float"],
                "chosen": chosen.get("choice"),
                "why": chosen.get("why"),
                "choices": rep["extra"].get("choices", []),
                "size_ratio": rep["size_bytes"]["ratio"],
            }
        )
    print(markdown(
        ["variant", "kept float", "whole-tick rel-L2", "median planning tick ms", "vs FP32"],
        [[r["variant"], ", ".join(r.get("kept_float") or []) or "-",
          f"{r['rel_l2'] * 100:.2f}%",
          "-" if r["median_ms"] is None else f"{r['median_ms']:.2f}",
          "-" if r["speedup_vs_fp32"] is None else f"{r['speedup_vs_fp32']:.2f}x"]
         for r in rows],
    ))  # fmt: skip
    for r in rows:
        for c in r.get("choices", []) if r["variant"].startswith("mixed") else []:
            nets = ", ".join(f"{n} {e * 100:.2f}%" for n, e in c["network_rel_l2"].items())
            print(
                f"  mixed tried: {c['choice']}: whole tick {c['worst_rel_l2'] * 100:.2f}% "
                f"({nets}), float weights {c['float_weights'] * 100:.0f}%, met {c['met']}"
            )
    summary = {
        "benchmark": "vla_quant",
        "model": ref,
        "cpu": host.model,
        "cpu_isa": host.name,
        "cpu_features": list(host.features),
        "threads": threads,
        "calibration": args.calib or f"synthetic n={args.calib_n}",
        **{f"{r['variant']}: rel_l2": r["rel_l2"] for r in rows[1:]},
        **{f"{r['variant']}: speedup": r["speedup_vs_fp32"] for r in rows[1:]},
    }
    print(json.dumps(summary))
    settings = {"preset": args.preset, "budget": args.budget, "target": args.target,
                "rounds": args.rounds, "per_round": args.per_round, "threads": threads,
                "calib": args.calib, "calib_n": args.calib_n}  # fmt: skip
    name = "vla_quant" if args.preset == "default" else f"vla_quant-{args.preset}"
    save(name, [*rows, {"summary": summary}], settings)


if __name__ == "__main__":
    main()
