"""Distillation on the zoo defaults, on this CPU, in one run.

Diffusion policy (default preset, a teacher trained on scripted demonstrations by
``demo_teacher.py``; trained here first if its weights are missing): the DDPM-100 and DDIM-16
teachers and step-distilled 1-, 2- and 4-call students (``edgekit distill --denoise-steps N``,
teacher DDIM-16). Per sampler: whole-tick p50 on onnxruntime FP32 (round-robin blocks in one
process) and the action-chunk error vs the DDIM-16 teacher from the same initial noise and
conditioning on held-out observations, in units of the action range. A 4-step student is also
distilled from the random-init default teacher, for contrast.

VLA (default preset) at width 0.5: whole-tick p50 ratio and whole-tick fidelity.

Usage: python benchmarks/distill_compare.py [--steps 300] [--vla-steps 200] [--skip-vla]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, p50_ms, round_robin, save

from edgekit.artifacts import load_artifact
from edgekit.calib import save_calibration, synthesize_for_program
from edgekit.distill import DistillConfig, distill
from edgekit.distill.steps import action_error, run_chunks, teacher_params
from edgekit.export import export_onnx
from edgekit.loader import TorchSource, load
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.spec import ProgramSpec

WEIGHTS = Path(__file__).parent / "weights" / "dp-default-demo.safetensors"


def data_file(src: TorchSource, work: Path, n: int, seed: int) -> tuple[Path, list[Any]]:
    program = build_program(src.spec.program)
    cset = synthesize_for_program(program, n=n, seed=seed)
    path = work / f"{src.spec.kind}-obs.npz"
    save_calibration(path, cset.arrays)
    observations = cset.observations()
    return path, observations[round(len(observations) * 0.75) :]


def diffusion(args: argparse.Namespace, work: Path, threads: int) -> list[dict[str, Any]]:
    if not WEIGHTS.is_file():
        from demo_teacher import train_teacher
        from safetensors.torch import save_file

        trained = train_teacher("default", 2000)
        WEIGHTS.parent.mkdir(exist_ok=True)
        save_file({k: v.contiguous() for k, v in trained.module.state_dict().items()}, WEIGHTS)
    rows: list[dict[str, Any]] = []
    for label, weights, students in (
        ("trained on demos", WEIGHTS, args.students),
        ("random init", None, args.random_students),
    ):
        if not students:
            continue
        src = load("zoo:diffusion-policy:default", weights=weights)
        assert isinstance(src, TorchSource)
        data, holdout = data_file(src, work, args.obs, seed=7)
        exp = export_onnx(src, work / f"teacher-{len(rows)}", tick_checks=0)
        teacher_rt = OrtRuntime(
            {n: exp.out / e["file"] for n, e in exp.manifest.files.items()}, threads=threads
        )
        params = dict(src.spec.program.params)
        ref = run_chunks(teacher_params(params, 16), teacher_rt, holdout, 0)
        samplers: dict[str, tuple[ProgramSpec, Any]] = {
            "DDPM-100 teacher": (src.spec.programs["ddpm100"], teacher_rt),
            "DDIM-16 teacher": (src.spec.programs["ddim16"], teacher_rt),
        }
        trained: dict[str, dict[str, Any]] = {}
        for n in students:
            out = work / f"student-{label[:6]}-{n}"
            config = DistillConfig(
                denoise_steps=n, steps=args.steps, latency_ticks=0, checkpoint_every=0
            )
            res = distill(src, out, config, data)
            art = load_artifact(out)
            rt = OrtRuntime({k: art.file(k) for k in art.manifest.files}, threads=threads)
            samplers[f"{n}-step student"] = (art.manifest.spec.program, rt)
            trained[f"{n}-step student"] = res.report
            print(f"[{label}] {n}-step: {res.report['fidelity']['student']}", flush=True)
        variants = {
            name: (lambda k, p=build_program(ps), r=rt: time_ticks(p, r, k, warmup=1).tick_ns)
            for name, (ps, rt) in samplers.items()
        }
        ns = round_robin(variants, args.rounds, args.per_round)
        ddim16 = p50_ms(ns["DDIM-16 teacher"])
        ddpm100 = p50_ms(ns["DDPM-100 teacher"])
        for name, (ps, rt) in samplers.items():
            got = run_chunks(dict(ps.params), rt, holdout, 0)
            err = action_error(got, ref, params)
            rep = trained.get(name, {})
            rows.append(
                {
                    "model": "diffusion-policy:default",
                    "teacher": label,
                    "sampler": name,
                    "denoiser_calls": build_program(ps).calls_per_tick()["denoiser"],
                    "p50_ms": p50_ms(ns[name]),
                    "speedup_vs_ddim16": ddim16 / p50_ms(ns[name]),
                    "speedup_vs_ddpm100": ddpm100 / p50_ms(ns[name]),
                    "error_vs_ddim16": err,
                    "baseline_error": rep.get("fidelity", {}).get("undistilled_baseline"),
                    "train_seconds": rep.get("training", {}).get("seconds"),
                    "train_steps": args.steps if rep else None,
                }
            )
    return rows


def vla(args: argparse.Namespace, work: Path, threads: int) -> list[dict[str, Any]]:
    src = load("zoo:vla:default")
    assert isinstance(src, TorchSource)
    data, _ = data_file(src, work, args.obs, seed=7)
    config = DistillConfig(
        width=0.5,
        steps=args.vla_steps,
        batch_size=args.vla_batch,
        latency_ticks=0,
        checkpoint_every=0,
    )
    res = distill(src, work / "vla-w05", config, data)
    exp = export_onnx(src, work / "vla-teacher", tick_checks=0)
    t_rt = OrtRuntime({n: exp.out / e["file"] for n, e in exp.manifest.files.items()}, threads)
    art = load_artifact(work / "vla-w05")
    s_rt = OrtRuntime({k: art.file(k) for k in art.manifest.files}, threads=threads)
    program = build_program(src.spec.program)
    ns = round_robin(
        {
            "teacher": lambda k: time_ticks(program, t_rt, k, warmup=1).tick_ns,
            "student w0.5": lambda k: time_ticks(program, s_rt, k, warmup=1).tick_ns,
        },
        args.rounds,
        args.per_round,
    )
    rep = res.report
    return [
        {
            "model": "vla:default",
            "student": "width 0.5",
            "teacher_params": rep["teacher"]["params"],
            "student_params": rep["student"]["params"],
            "teacher_flops": rep["teacher"]["flops_per_tick"],
            "student_flops": rep["student"]["flops_per_tick"],
            "teacher_p50_ms": p50_ms(ns["teacher"]),
            "student_p50_ms": p50_ms(ns["student w0.5"]),
            "speedup": p50_ms(ns["teacher"]) / p50_ms(ns["student w0.5"]),
            "fidelity": rep["fidelity"],
            "train_seconds": rep["training"]["seconds"],
            "train_steps": args.vla_steps,
            "batch_size": args.vla_batch,
        }
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300, help="step-distillation optimiser steps")
    ap.add_argument("--students", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--random-students", type=int, nargs="*", default=[4])
    ap.add_argument("--vla-steps", type=int, default=200)
    ap.add_argument("--vla-batch", type=int, default=16)
    ap.add_argument("--obs", type=int, default=256, help="observations (25% held out)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=8)
    ap.add_argument("--skip-vla", action="store_true")
    ap.add_argument("--skip-diffusion", action="store_true")
    args = ap.parse_args()
    threads = default_threads()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_diffusion:
            rows += diffusion(args, work, threads)
        if not args.skip_vla:
            rows += vla(args, work, threads)
    path = save("distill_compare", rows, {**vars(args), "threads": threads})
    table = []
    for r in rows:
        if r["model"].startswith("diffusion"):
            e = r["error_vs_ddim16"]
            table.append(
                [
                    r["teacher"],
                    r["sampler"],
                    str(r["denoiser_calls"]),
                    f"{r['p50_ms']:.2f}",
                    f"{r['speedup_vs_ddim16']:.2f}x",
                    f"{r['speedup_vs_ddpm100']:.1f}x",
                    f"{e['mean_abs'] * 100:.2f}%",
                    f"{e['max_abs'] * 100:.1f}%",
                ]
            )
    if table:
        print(
            markdown(
                [
                    "teacher",
                    "sampler",
                    "calls",
                    "tick p50 ms",
                    "vs DDIM-16",
                    "vs DDPM-100",
                    "mean-abs err",
                    "max-abs err",
                ],
                table,
            )
        )
    for r in rows:
        if r["model"].startswith("vla"):
            h = r["fidelity"]["headline"]["value"]
            print(
                f"vla default width 0.5: params {r['student_params'] / r['teacher_params']:.2f}x, "
                f"tick p50 {r['teacher_p50_ms']:.1f} -> {r['student_p50_ms']:.1f} ms "
                f"({r['speedup']:.2f}x), whole-tick rel-L2 {h * 100:.1f}%"
            )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
