"""The goals of the flow-matching VLA work, measured in one run on this host: whole-tick speed
of few-step and narrow students, the KV cache, INT8 prefix + float expert, and closed-loop task
success.

1. **Speed** (onnxruntime FP32 unless said, one process, every tick plans: ``n_action_steps=1``,
   ticks timed round-robin in blocks after a warm-up; the figure is the median planning tick):
   ``zoo:vla-flow:<preset>`` with the 10-step teacher program (prefix x1 + expert x10 from the
   KV cache), the prefix recomputed before every step, the 2- and 1-step student programs, the
   1-step program on the INT8 prefix + FP32 expert and all-INT8 artifacts, and the narrow
   architecture (``--width 0.5 --depth 0.5``) with the 1-step program, FP32 and INT8;
   ``zoo:diffusion-policy`` with DDIM-16 vs the 1-step student program, FP32, INT8 and INT8
   encoder + FP32 denoiser. A student's tick cost depends on its architecture and calls, not
   on its trained weights: every variant is timed with seeded weights (no trained default
   checkpoint ships); the closed loop (3) runs the trained ones.
2. **Fidelity of INT8** vs FP32 (the quantize report's worst whole-tick relative L2 over
   generated calibration observations, as benchmarks/vla_quant.py): vla-flow's INT8 prefix +
   FP32 expert and all-INT8 on the teacher's programs (default and narrow); the diffusion
   policy's INT8 artifacts quantized and measured on the 1-step program they run.
3. **Closed loop** (gymnasium Reacher-v5, ``--episodes`` seeded episodes from seed 0, both
   policies on onnxruntime, ``edgekit.eval``): the trained ``zoo:vla-flow:reacher`` teacher's 1-
   and 2-step students, its all-INT8 and INT8 + FP32 expert variants, its narrow 1-step student
   (``--width 0.5 --depth 0.5`` on the 2100-tick DART recording, then ``--denoise-steps 1
   --student`` that, prefix and expert trained through the sampler) and that student's INT8
   prefix + FP32 expert (calibrated on that recording); the ``zoo:diffusion-policy:reacher``
   teacher's 1-step student and its INT8 encoder + FP32 denoiser; each against its teacher on
   the same seeds: success ratio (the gate, >= 0.95), Wilson 95% intervals, exact McNemar, and
   the artifact's own fidelity report.

Usage: python benchmarks/vla_flow_goals.py [--episodes 50] [--skip-closed-loop]
Prints the host's CPU and ISA flags, Markdown tables and one JSON line; writes
results/vla_flow_goals.json. Takes ~25 min on 2 cores (closed loop ~15 of them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, round_robin, save

from edgekit.artifacts import load_artifact
from edgekit.calib import save_calibration, synthesize_for_program
from edgekit.distill import DistillConfig, distill
from edgekit.distill.steps import student_params, teacher_params
from edgekit.eval import EvalConfig, evaluate
from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader import Source, TorchSource, load
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.quantize import Int8Config, quantize
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.spec import ProgramSpec

ROOT = Path(__file__).resolve().parents[1]
CALIB = ROOT / "calib_data"
DP_SAMPLER = "diffusion-sampler"
NARROW = (0.5, 0.5)  # width, depth of the narrow flow students (edgekit distill --width/--depth)


def ticks(program: LoopProgram, rt: Runtime, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    s = time_ticks(program, rt, n, warmup=0)
    return s.planning_ns, {k: v[s.planned] for k, v in s.stage_ns.items()}


def fp32_runtime(src: Source, out: Path, threads: int) -> OrtRuntime:
    res = export_onnx(src, out, tick_checks=0)
    assert res.passed, res.failed[0].message
    return OrtRuntime({n: res.out / e["file"] for n, e in res.manifest.files.items()}, threads)


def artifact_runtime(path: Path, threads: int) -> OrtRuntime:
    art = load_artifact(path)
    return OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads=threads)


def time_variants(
    variants: Mapping[str, tuple[LoopProgram, Runtime]], rounds: int, per_round: int
) -> dict[str, dict[str, Any]]:
    """Median planning tick and per-stage medians of each (program, runtime), round-robin."""
    for program, rt in variants.values():  # warm every variant before the clock
        time_ticks(program, rt, 1, 1)
    stages: dict[str, dict[str, list[np.ndarray]]] = {n: {} for n in variants}

    def one(name: str, n: int) -> np.ndarray:
        total, per_stage = ticks(*variants[name], n)
        for k, v in per_stage.items():
            stages[name].setdefault(k, []).append(v)
        return total

    samples = round_robin({n: partial(one, n) for n in variants}, rounds, per_round)
    return {
        n: {
            "median_ms": float(np.median(s)) / 1e6,
            "ticks": len(s),
            "stage_median_ms": {
                k: float(np.median(np.concatenate(v))) / 1e6 for k, v in stages[n].items()
            },
            "calls": variants[n][0].calls_per_tick(),
        }
        for n, s in samples.items()
    }


def narrow(preset: str) -> TorchSource:
    """``zoo:vla-flow:<preset>`` scaled by NARROW (seeded weights: the tick's cost does not
    depend on them); the architecture of the narrow students of the closed loop."""
    from edgekit.zoo import ZOO

    entry = ZOO.get("vla-flow")
    cfg = entry.scaled(entry.config(preset), *NARROW)
    model = entry.build(cfg)
    name = f"{preset}-w{NARROW[0]:g}-d{NARROW[1]:g}"
    return TorchSource(f"zoo:vla-flow:{name}", entry.spec(cfg, name), model, model.networks(), "")


def int8_variants(
    src: Source, work: Path, threads: int, tag: str
) -> tuple[dict[str, float], dict[str, OrtRuntime]]:
    """All INT8 and INT8 prefix + FP32 expert: whole-tick rel-L2 vs FP32, and runtimes."""
    calib = work / f"{tag}-calib.npz"
    program = build_program(src.spec.program)
    save_calibration(calib, synthesize_for_program(program, n=48, seed=0).arrays)
    reports, runtimes = {}, {}
    for name, keep in (("all INT8", []), ("INT8 prefix + FP32 expert", ["expert"])):
        cfg = Int8Config(target="cpu", latency_ticks=0, keep_float=keep)
        q = quantize(src, work / f"{tag}-{len(keep)}", cfg, str(calib))
        reports[name] = q.report["fidelity"]["worst_rel_l2"]
        runtimes[name] = artifact_runtime(q.out, threads)
    return reports, runtimes


def flow_speed(preset: str, work: Path, threads: int, rounds: int, per: int) -> dict[str, Any]:
    src, small = load(f"zoo:vla-flow:{preset}"), narrow(preset)
    fp32 = fp32_runtime(src, work / f"vf-{preset}", threads)
    small32 = fp32_runtime(small, work / f"vfn-{preset}", threads)
    reports, runtimes = int8_variants(src, work, threads, f"vf-{preset}")
    small_reports, small8 = int8_variants(small, work, threads, f"vfn-{preset}")
    base = {**src.spec.program.params, "n_action_steps": 1}
    k = int(base["steps"])

    def prog(**kw: Any) -> LoopProgram:
        return build_program(ProgramSpec("vla-flow", {**base, **kw}))

    n = f"narrow (width x{NARROW[0]:g}, depth x{NARROW[1]:g}) 1-step student"
    variants = {
        f"teacher, {k} steps (KV cache)": (prog(), fp32),
        f"teacher, {k} steps, prefix recomputed per step": (prog(recompute_prefix=True), fp32),
        "2-step student": (prog(steps=2), fp32),
        "1-step student": (prog(steps=1), fp32),
        f"teacher, {k} steps, INT8 prefix + FP32 expert": (prog(), runtimes[
            "INT8 prefix + FP32 expert"]),
        "1-step student, INT8 prefix + FP32 expert": (prog(steps=1), runtimes[
            "INT8 prefix + FP32 expert"]),
        "1-step student, all INT8": (prog(steps=1), runtimes["all INT8"]),
        n: (prog(steps=1), small32),
        f"{n}, INT8 prefix + FP32 expert": (prog(steps=1), small8["INT8 prefix + FP32 expert"]),
        f"{n}, all INT8": (prog(steps=1), small8["all INT8"]),
    }  # fmt: skip
    timed = time_variants(variants, rounds, per)
    return {
        "model": src.ref,
        "narrow": small.ref,
        "timed": timed,
        "int8_rel_l2": reports,
        "narrow_int8_rel_l2": small_reports,
    }


def dp_speed(preset: str, work: Path, threads: int, rounds: int, per: int) -> dict[str, Any]:
    """DDIM-16 vs the 1-step program, FP32 and INT8; the INT8 artifacts are quantized (and
    their whole-tick fidelity vs FP32 measured) on the 1-step program they run."""
    src = load(f"zoo:diffusion-policy:{preset}")
    rt = fp32_runtime(src, work / f"dp-{preset}", threads)
    params = dict(src.spec.program.params)
    teacher = build_program(ProgramSpec(DP_SAMPLER, teacher_params(params, 16)))
    one = ProgramSpec(DP_SAMPLER, student_params(params, 1, 16, "sample"))
    student = build_program(one)
    src1 = replace(src, spec=replace(src.spec, program=one, programs={"distilled1": one}))
    calib = work / f"dp-{preset}-calib.npz"
    save_calibration(calib, synthesize_for_program(student, 48, 0).arrays)
    variants = {"teacher, DDIM-16": (teacher, rt), "1-step student": (student, rt)}
    rel = {}
    for name, keep in (("INT8", []), ("INT8 encoder + FP32 denoiser", ["denoiser"])):
        cfg = Int8Config(target="cpu", latency_ticks=0, keep_float=keep)
        q = quantize(src1, work / f"dp-{preset}-int8-{len(keep)}", cfg, str(calib))
        variants[f"1-step student, {name}"] = (student, artifact_runtime(q.out, threads))
        rel[name] = q.report["fidelity"]["worst_rel_l2"]
    return {
        "model": src.ref,
        "timed": time_variants(variants, rounds, per),
        "int8_1step_rel_l2": rel,
    }


def closed_loop(
    work: Path, episodes: int, dp_data: Path, dp_steps: int, dp_pool: int
) -> list[dict[str, Any]]:
    vf, dp = "zoo:vla-flow:reacher", "zoo:diffusion-policy:reacher"
    vf_calib = str(CALIB / "reacher-vla-flow.npz")
    made: dict[str, tuple[str, Path | None]] = {}
    for n in (1, 2):
        cfg = DistillConfig(denoise_steps=n, steps=300, latency_ticks=0)
        made[f"vla-flow {n}-step student"] = (vf, distill(vf, work / f"vf{n}", cfg, vf_calib).out)
    for name, keep in (("vla-flow all INT8", []), ("vla-flow INT8 prefix + FP32 expert",
                                                   ["expert"])):  # fmt: skip
        cfg8 = Int8Config(target="cpu", latency_ticks=0, keep_float=keep)
        made[name] = (vf, quantize(vf, work / f"vfq{len(keep)}", cfg8, vf_calib).out)
    # the narrow student: width/depth distillation (outputs), then its prefix and expert
    # trained through the 1-step sampler against the teacher's Euler-10 chunks
    vf_dart = str(CALIB / "reacher-vla-flow-dart.npz")
    w, d = NARROW
    wide = distill(vf, work / "vfw", DistillConfig(width=w, depth=d, steps=2000,
                                                   latency_ticks=0), vf_dart).out  # fmt: skip
    cfg = DistillConfig(denoise_steps=1, student=str(wide), steps=6000, teacher_pool=8192,
                        latency_ticks=0)  # fmt: skip
    small = distill(vf, work / "vfn1", cfg, vf_dart).out
    made[f"vla-flow narrow (width x{w:g}, depth x{d:g}) 1-step student"] = (vf, small)
    cfg8 = Int8Config(target="cpu", latency_ticks=0, keep_float=["expert"])
    # calibrated on the perturbed recording: from the 56 expert ticks it kept 43/50
    made["vla-flow narrow 1-step student, INT8 prefix + FP32 expert"] = (
        vf, quantize(str(small), work / "vfn1q", cfg8, vf_dart).out)  # fmt: skip
    cfg = DistillConfig(denoise_steps=1, program="ddim16", steps=dp_steps, lr=3e-4,
                        teacher_pool=dp_pool, latency_ticks=0)  # fmt: skip
    dp1 = distill(dp, work / "dp1", cfg, dp_data).out
    made["diffusion-policy 1-step student"] = (dp, dp1)
    cfg8 = Int8Config(target="cpu", latency_ticks=0, keep_float=["denoiser"])
    dp_calib = str(CALIB / "reacher-diffusion-policy.npz")
    made["diffusion-policy 1-step student, INT8 encoder + FP32 denoiser"] = (
        dp, quantize(str(dp1), work / "dp1q", cfg8, dp_calib).out)  # fmt: skip
    rows = []
    for name, (teacher, path) in made.items():
        ev = EvalConfig(env="reacher", episodes=episodes, seed=0, teacher=teacher,
                        min_success_ratio=0.95)  # fmt: skip
        r = evaluate(str(path), ev)
        assert r.teacher is not None
        checks = load_artifact(path).manifest.checks if path else {}
        fid = checks.get("distill", checks.get("quantize", {})).get("fidelity", {})
        rows.append({
            "variant": name,
            "fidelity_headline": fid.get("headline")
            or {"metric": "worst_rel_l2 vs FP32", "value": fid.get("worst_rel_l2")},
            "teacher": teacher,
            "candidate_successes": r.candidate.successes,
            "teacher_successes": r.teacher.successes,
            "episodes": episodes,
            "candidate_wilson95": list(r.candidate.success_ci),
            "teacher_wilson95": list(r.teacher.success_ci),
            "success_ratio": r.ratio,
            "passed": r.passed,
            "paired": (r.paired or {}).get("summary"),
            "candidate_tick_p50_ms": float(np.median(r.candidate.tick_ms)),
            "teacher_tick_p50_ms": float(np.median(r.teacher.tick_ms)),
        })  # fmt: skip
    return rows


def speed_table(title: str, timed: dict[str, dict[str, Any]], ref: str) -> str:
    base = timed[ref]["median_ms"]
    rows = []
    for name, t in timed.items():
        calls = ", ".join(f"{k} x{v}" for k, v in t["calls"].items())
        st = ", ".join(f"{k} {v:.1f}" for k, v in t["stage_median_ms"].items() if v >= 0.05)
        rows.append([name, calls, f"{t['median_ms']:.2f}", f"{base / t['median_ms']:.2f}x", st])
    head = ["variant", "calls per planning tick", "median ms", f"vs {ref}", "stage medians ms"]
    return f"{title}\n\n" + markdown(head, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=4)
    ap.add_argument("--dp-data", type=Path, default=CALIB / "reacher-diffusion-policy-dart.npz")
    ap.add_argument("--dp-steps", type=int, default=8000)
    ap.add_argument("--dp-pool", type=int, default=8192)
    ap.add_argument("--skip-closed-loop", action="store_true")
    args = ap.parse_args()
    threads, host = default_threads(), host_isa()
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); {threads} threads")
    r, p = args.rounds, args.per_round
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        flow = flow_speed(args.preset, work, threads, r, p)
        dps = {ps: dp_speed(ps, work, threads, r, p) for ps in (args.preset, "reacher")}
        flow_reacher = flow_speed("reacher", work, threads, r, p)
        loop = [] if args.skip_closed_loop else closed_loop(
            work, args.episodes, args.dp_data, args.dp_steps, args.dp_pool)  # fmt: skip
    k_ref = next(iter(flow["timed"]))
    print(speed_table(f"{flow['model']} (whole planning tick, onnxruntime)", flow["timed"], k_ref))
    print(speed_table(f"{flow_reacher['model']}", flow_reacher["timed"], k_ref))
    for d in dps.values():
        print(speed_table(d["model"], d["timed"], "teacher, DDIM-16"))
    for d in dps.values():
        print(f"1-step tick, INT8 vs FP32 rel-L2 ({d['model']}): " + ", ".join(
            f"{n} {v * 100:.2f}%" for n, v in d["int8_1step_rel_l2"].items()))  # fmt: skip
    for what, f in (("default", flow), ("reacher", flow_reacher)):
        print(f"INT8 whole-tick rel-L2 vs FP32 ({what}): " + ", ".join(
            f"{n} {v * 100:.2f}%" for n, v in f["int8_rel_l2"].items()))  # fmt: skip
        print(f"INT8 whole-tick rel-L2 vs FP32 ({f['narrow']}): " + ", ".join(
            f"{n} {v * 100:.2f}%" for n, v in f["narrow_int8_rel_l2"].items()))  # fmt: skip
    if loop:
        print(markdown(
            ["variant", "success", "Wilson 95%", "teacher", "ratio (gate >= 0.95)",
             "paired", "tick p50 ms", "fidelity (its report)"],
            [[x["variant"], f"{x['candidate_successes']}/{x['episodes']}",
              "[{:.2f}, {:.2f}]".format(*x["candidate_wilson95"]),
              f"{x['teacher_successes']}/{x['episodes']}",
              f"{x['success_ratio']:.3f} {'PASS' if x['passed'] else 'FAIL'}",
              x["paired"] or "-",
              f"{x['candidate_tick_p50_ms']:.2f} vs {x['teacher_tick_p50_ms']:.2f}",
              "{metric} {value:.4g}".format(**x["fidelity_headline"])]
             for x in loop],
        ))  # fmt: skip
    t = flow["timed"]
    summary = {
        "benchmark": "vla_flow_goals",
        "cpu": host.model,
        "cpu_isa": host.name,
        "cpu_features": list(host.features),
        "threads": threads,
        "flow_1step_speedup": t[k_ref]["median_ms"] / t["1-step student"]["median_ms"],
        "flow_1step_int8_prefix_speedup": t[k_ref]["median_ms"]
        / t["1-step student, INT8 prefix + FP32 expert"]["median_ms"],
        **{
            f"flow_{name}_speedup": t[k_ref]["median_ms"] / v["median_ms"]
            for name, v in t.items()
            if name.startswith("narrow")
        },
        "flow_narrow_int8_rel_l2": flow["narrow_int8_rel_l2"],
        "kv_cache_speedup": t[f"{k_ref}, prefix recomputed per step".replace(" (KV cache)", "")][
            "median_ms"
        ]
        / t[k_ref]["median_ms"],
        "int8_prefix_fp32_expert_rel_l2": flow["int8_rel_l2"]["INT8 prefix + FP32 expert"],
        "int8_prefix_speedup": t[k_ref]["median_ms"]
        / t[f"{k_ref.replace(' (KV cache)', '')}, INT8 prefix + FP32 expert"]["median_ms"],
        **{
            f"dp_{ps}_1step{suffix}_speedup": d["timed"]["teacher, DDIM-16"]["median_ms"]
            / d["timed"][f"1-step student{name}"]["median_ms"]
            for ps, d in dps.items()
            for suffix, name in (
                ("", ""),
                ("_int8", ", INT8"),
                ("_int8_encoder", ", INT8 encoder + FP32 denoiser"),
            )
        },
        **{f"dp_{ps}_1step_int8_rel_l2": d["int8_1step_rel_l2"] for ps, d in dps.items()},
        **{f"success_ratio: {x['variant']}": x["success_ratio"] for x in loop},
    }
    print(json.dumps(summary))
    settings = {
        "preset": args.preset,
        "episodes": args.episodes,
        "rounds": r,
        "per_round": p,
        "threads": threads,
        "dp_data": str(args.dp_data),
        "dp_steps": args.dp_steps,
    }
    save("vla_flow_goals", [{"flow": flow, "flow_reacher": flow_reacher, "dp": dps,
                             "closed_loop": loop}, {"summary": summary}], settings)  # fmt: skip


if __name__ == "__main__":
    main()
