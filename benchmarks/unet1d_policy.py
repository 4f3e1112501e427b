"""(a) The diffusers UNet1D diffusion policy (examples/diffusion_unet1d): the 16-step DDIM
teacher's whole planning tick vs its 2-step distilled student and vs INT8, all in one run.

Every variant is an edgekit artifact made here — the teacher exported to FP32 ONNX, INT8 by
``edgekit quantize`` (generated observations, 25% held out), the student by ``edgekit distill
--denoise-steps 2`` — and timed on onnxruntime round-robin in blocks in one process; only the
ticks that run the networks count (the chunk queue pops actions on the others). Fidelity is
each artifact's own report: the student's mean-abs error of the action chunk in units of the
clipped sample's range (2) vs the teacher, on held-out observations; INT8's worst whole-tick
relative L2 vs FP32. Weights are a fixed-seed initialisation (the example trains nothing).

Usage: python benchmarks/unet1d_policy.py [--width 1.0 --distill-steps 100 --lr 1e-3]
Prints a Markdown table and one JSON line; writes results/unet1d_policy.json.
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
from edgekit.distill import DistillConfig, distill
from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader.torch_files import load_factory
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.quantize import Int8Config, quantize
from edgekit.runtimes import OrtRuntime, default_threads

POLICY = str(Path(__file__).resolve().parents[1] / "examples" / "diffusion_unet1d" / "policy.py")


def planning_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=1).planning_ns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--distill-steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=16)
    args = ap.parse_args()
    threads, host = default_threads(), host_isa()
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); {threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = load_factory(f"{POLICY}:make_policy", kwargs={"width": args.width})
        fp32 = export_onnx(src, work / "fp32", tick_checks=1)
        assert fp32.passed, fp32.failed[0].message
        q = quantize(str(fp32.out), work / "int8", Int8Config(latency_ticks=0), "synthetic")
        d = distill(src, work / "d2", DistillConfig(denoise_steps=2, steps=args.distill_steps,
                    lr=args.lr, latency_ticks=0, checkpoint_every=0), "synthetic")  # fmt: skip
        assert q.written and d.written
        programs: dict[str, LoopProgram] = {}
        runtimes: dict[str, OrtRuntime] = {}
        for name, folder in (("teacher DDIM-16 FP32", fp32.out), ("teacher INT8", q.out),
                             ("student 2-step FP32", d.out)):  # fmt: skip
            art = load_artifact(folder)
            programs[name] = build_program(art.manifest.spec.program)
            runtimes[name] = OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads)
        for name, rt in runtimes.items():  # warm every variant before the clock
            time_ticks(programs[name], rt, 2, 1)
        samples = round_robin(
            {n: partial(planning_ns, programs[n], rt) for n, rt in runtimes.items()},
            args.rounds,
            args.per_round,
        )
    p50 = {n: p50_ms(s) for n, s in samples.items()}
    teacher = p50["teacher DDIM-16 FP32"]
    head = d.report["fidelity"]["headline"]
    rows: list[dict[str, Any]] = [
        {"variant": n, "planning_tick_p50_ms": p50[n],
         "calls_per_tick": programs[n].calls_per_tick(), "ticks_timed": len(samples[n])}
        for n in runtimes
    ]  # fmt: skip
    summary = {
        "benchmark": "unet1d_policy",
        "cpu": host.model,
        "cpu_isa": host.name,
        "threads": threads,
        "teacher_p50_ms": teacher,
        "student_p50_ms": p50["student 2-step FP32"],
        "student_speedup": teacher / p50["student 2-step FP32"],
        "student_error_action_range": head["value"],
        "student_error_metric": head["metric"],
        "untrained_student_error": d.report["fidelity"]["undistilled_baseline"].get("mean_abs"),
        "int8_p50_ms": p50["teacher INT8"],
        "int8_speedup": teacher / p50["teacher INT8"],
        "int8_worst_rel_l2": q.error,
        "int8_scheme": q.report["scheme"],
    }
    print(markdown(
        ["variant", "calls per planning tick", "planning tick p50 ms", "vs teacher FP32"],
        [[r["variant"], ", ".join(f"{k} x{v}" for k, v in r["calls_per_tick"].items()),
          f"{r['planning_tick_p50_ms']:.3f}", f"{teacher / r['planning_tick_p50_ms']:.2f}x"]
         for r in rows],
    ))  # fmt: skip
    print(f"student error: {head['value']:.4f} ({head['metric']}); INT8 worst rel-L2 {q.error:.4f}")
    print(json.dumps(summary))
    settings = {"width": args.width, "distill_steps": args.distill_steps, "lr": args.lr,
                "rounds": args.rounds, "per_round": args.per_round, "threads": threads}  # fmt: skip
    save("unet1d_policy", [*rows, {"summary": summary}], settings)


if __name__ == "__main__":
    main()
