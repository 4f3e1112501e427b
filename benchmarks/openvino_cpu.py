"""x86/ARM CPUs on OpenVINO: each zoo kind's default at onnxruntime FP32, edgekit's onnxruntime
INT8, OpenVINO FP32 and BF16 (where the CPU has it) and NNCF INT8 for OpenVINO (its defaults,
and edgekit's search to the error budget), in one process.

Every variant runs the model's own loop program; the figure is the median *planning* tick (the
ticks that run the networks: a diffusion policy's whole K-step sampler, a VLA's chunk), timed
round-robin in blocks so that slow phases of the machine hit every variant alike (onnxruntime
spinning off; OpenVINO with the latency hint and the same thread count). Fidelity is the worst
whole-tick relative L2 vs onnxruntime FP32: for the INT8 variants their quantize report's
(held-out ticks of the same calibration set), for OpenVINO FP32/BF16 the same measure on the
same held-out observations. Weights are seeded (a tick costs what its architecture costs).

Usage: python benchmarks/openvino_cpu.py [--kinds vla diffusion-policy] [--preset default]
       [--budget 0.02] [--calib-n 48] [--rounds 3 --per-round 4]
Prints the host's CPU and ISA flags, a Markdown table and one JSON line; writes
results/openvino_cpu.json (results/openvino_cpu-PRESET.json for other presets).
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

from edgekit.calib import load_calibration, save_calibration, synthesize_for_program
from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader import load
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.fidelity import tick_fidelity, worst_error
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.onnxfile import onnx_bytes
from edgekit.quantize import Int8Config, quantize
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.runtimes.openvino import OpenVinoRuntime


def ticks_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=0).planning_ns


def one_kind(kind: str, args: argparse.Namespace, work: Path, threads: int) -> list[dict]:
    src = load(f"zoo:{kind}:{args.preset}")
    program = build_program(src.spec.program)
    calib = work / f"{kind}-calib.npz"
    save_calibration(calib, synthesize_for_program(program, n=args.calib_n, seed=0).arrays)
    fp32 = export_onnx(src, work / f"{kind}-fp32", tick_checks=0)
    files = {n: fp32.out / e["file"] for n, e in fp32.manifest.files.items()}
    runtimes: dict[str, Any] = {"ORT FP32": OrtRuntime(files, threads=threads)}
    fidelity: dict[str, float | None] = {"ORT FP32": 0.0}
    size: dict[str, int] = {"ORT FP32": sum(onnx_bytes(p) for p in files.values())}
    notes: dict[str, str] = {}
    for name, config in (
        ("ORT INT8 (edgekit)", Int8Config(latency_ticks=0)),
        ("OpenVINO INT8 (NNCF defaults)", Int8Config(latency_ticks=0, runtime="openvino")),
        (f"OpenVINO INT8 (NNCF, search to {args.budget:g})",
         Int8Config(latency_ticks=0, runtime="openvino", max_error=args.budget)),
    ):  # fmt: skip
        print(f"{kind}: quantizing {name}", flush=True)
        r = quantize(fp32.out, work / f"{kind}-{len(runtimes)}", config, str(calib))
        rep = r.report
        fidelity[name] = rep["fidelity"]["worst_rel_l2"]
        size[name] = rep["size_bytes"]["quantized"]
        notes[name] = rep["extra"].get("chosen", {}).get("choice", "") or rep["scheme"]
        if not r.written:
            notes[name] += f" (missed {args.budget:g}: not timed)"
            continue
        qfiles = {n: r.out / e["file"] for n, e in _networks(r.out).items()}
        runtimes[name] = (
            OpenVinoRuntime(qfiles, threads) if "OpenVINO" in name else OrtRuntime(qfiles, threads)
        )
    runtimes["OpenVINO FP32"] = OpenVinoRuntime(files, threads, "f32")
    if host_isa().has_bf16:
        runtimes["OpenVINO BF16"] = OpenVinoRuntime(files, threads, "bf16")
    held = load_calibration(calib, program.observation_spec()).split()[1].observations()
    for name in ("OpenVINO FP32", "OpenVINO BF16"):
        if name in runtimes:
            rows = tick_fidelity({"default": program}, runtimes["ORT FP32"], runtimes[name], held)
            fidelity[name] = worst_error(rows)
            size[name] = size["ORT FP32"]
    timed = build_program(src.spec.program)
    for rt in runtimes.values():  # warm every variant before the clock
        time_ticks(timed, rt, 2, 1)
    samples = round_robin({n: partial(ticks_ns, timed, rt) for n, rt in runtimes.items()},
                          args.rounds, args.per_round)  # fmt: skip
    p50 = {n: p50_ms(s) for n, s in samples.items()}
    base = p50["ORT FP32"]
    out = []
    for name in fidelity:
        out.append({
            "kind": kind, "preset": args.preset, "variant": name, "median_ms": p50.get(name),
            "speedup_vs_ort_fp32": base / p50[name] if name in p50 else None,
            "rel_l2": fidelity[name], "bytes": size.get(name),
            "bytes_ratio": size[name] / size["ORT FP32"] if name in size else None,
            "note": notes.get(name, ""),
        })  # fmt: skip
    return out


def _networks(folder: Path) -> dict[str, dict[str, Any]]:
    m = json.loads((folder / "edgekit.json").read_text())
    nets = {n["name"] for n in m["model"]["networks"]}
    return {k: v for k, v in m["files"].items() if k in nets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["vla", "diffusion-policy"])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--budget", type=float, default=0.02)
    ap.add_argument("--calib-n", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=4)
    args = ap.parse_args()
    threads = default_threads()
    host = host_isa()
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); {threads} threads")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            rows += one_kind(kind, args, Path(tmp), threads)
    print(markdown(
        ["kind", "variant", "median planning tick ms", "vs ORT FP32", "whole-tick rel-L2",
         "bytes vs FP32", "note"],
        [[r["kind"], r["variant"], "-" if r["median_ms"] is None else f"{r['median_ms']:.2f}",
          "-" if r["speedup_vs_ort_fp32"] is None else f"{r['speedup_vs_ort_fp32']:.2f}x",
          "-" if r["rel_l2"] is None else f"{r['rel_l2'] * 100:.2f}%",
          "-" if r["bytes_ratio"] is None else f"{r['bytes_ratio']:.2f}", r["note"]]
         for r in rows],
    ))  # fmt: skip
    summary = {"benchmark": "openvino_cpu", "cpu": host.model, "cpu_isa": host.name,
               "cpu_features": list(host.features), "threads": threads,
               **{f"{r['kind']} {r['variant']}": [r["speedup_vs_ort_fp32"], r["rel_l2"]]
                  for r in rows}}  # fmt: skip
    print(json.dumps(summary))
    name = "openvino_cpu" if args.preset == "default" else f"openvino_cpu-{args.preset}"
    save(name, [*rows, {"summary": summary}], vars(args))


if __name__ == "__main__":
    main()
