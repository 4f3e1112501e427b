"""Quantization on every zoo default, on this CPU, against the peers, in one run.

Variants: FP32 onnxruntime (the reference), eager PyTorch, edgekit INT8, onnxruntime
``quantize_static`` with its defaults, NNCF ``quantize`` with its defaults, edgekit INT4, and
edgekit mixed precision to a budget. All are calibrated on the same observations and measured
the same way: whole-tick p50 (default loop program, round-robin blocks in one process) and
whole-tick fidelity vs FP32 (worst relative L2 over every program's outputs on held-out ticks).

Usage: python benchmarks/quantize_compare.py [--kinds vla diffusion-policy] [--budget 0.02]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, p50_ms, round_robin, save

from edgekit.calib import save_calibration, synthesize_for_program
from edgekit.errors import EdgekitError
from edgekit.export import export_onnx
from edgekit.isa import host_isa
from edgekit.loader import TorchSource, load
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.capture import FeedReader, capture, obs_match
from edgekit.loop.fidelity import tick_fidelity, worst_error
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.quantize import quantize, quantize_config
from edgekit.runtimes import OrtRuntime, TorchRuntime, default_threads
from edgekit.zoo import ZOO


def ticks_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=1).tick_ns


def ort_defaults(fp32: Path, out: Path, feeds: list[dict[str, np.ndarray]]) -> Path:
    from onnxruntime.quantization import quantize_static

    quantize_static(str(fp32), str(out), FeedReader(feeds))
    return out


def nncf_defaults(fp32: Path, out: Path, feeds: list[dict[str, np.ndarray]]) -> Path:
    import nncf
    import onnx

    model = nncf.quantize(onnx.load(str(fp32)), nncf.Dataset(feeds))
    onnx.save(model, str(out))
    return out


def peer(
    fn: Callable[..., Path], files: dict[str, Path], feeds: Any, work: Path, tag: str
) -> dict[str, Path]:
    return {n: fn(p, work / f"{tag}.{n}.onnx", feeds[n]) for n, p in files.items()}


def edgekit_variant(src: TorchSource, work: Path, calib: Path, **cfg: Any) -> dict[str, Path]:
    tag = "-".join(f"{v}" for v in cfg.values())
    res = quantize(src, work / tag, quantize_config(latency_ticks=0, **cfg), str(calib))
    from edgekit.artifacts import load_artifact

    art = load_artifact(res.out)
    return {n: art.file(n) for n in art.manifest.files}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", nargs="+", default=ZOO.names())
    ap.add_argument("--budget", type=float, default=0.02, help="mixed-precision error budget")
    ap.add_argument("--calib-n", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=6)
    ap.add_argument("--no-mixed", action="store_true")
    args = ap.parse_args()
    threads = default_threads()
    rows: list[dict[str, Any]] = []
    table: list[list[str]] = []
    for kind in args.kinds:
        src = load(f"zoo:{kind}:default")
        assert isinstance(src, TorchSource)
        program = build_program(src.spec.program)
        programs = {k: build_program(p) for k, p in src.spec.programs.items()}
        cset = synthesize_for_program(program, n=args.calib_n, seed=0)
        cal, hold = cset.split(0.25)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            calib = work / "calib.npz"
            save_calibration(calib, cset.arrays)
            res = export_onnx(src, work / "fp32", tick_checks=0)
            files = {n: work / "fp32" / e["file"] for n, e in res.manifest.files.items()}
            fp32 = OrtRuntime(files, threads=threads)
            feeds, _ = capture(programs, fp32, cal.observations(), 64)
            fid_programs = {
                k: p
                for k, p in programs.items()
                if obs_match(p.observation_spec(), hold.observations()[0])
            }
            builders: dict[str, Callable[[], dict[str, Path]]] = {
                # `cpu`: 7-bit weights on any x86 host; `cpu-x86-vnni`: 8-bit (VNNI hosts only)
                "edgekit int8": partial(edgekit_variant, src, work, calib, precision="int8"),
                **(
                    {
                        "edgekit int8 8-bit (cpu-x86-vnni)": partial(
                            edgekit_variant,
                            src,
                            work,
                            calib,
                            precision="int8",
                            target="cpu-x86-vnni",
                        )
                    }
                    if host_isa().name == "x86-vnni"
                    else {}
                ),
                "ORT quantize_static defaults": partial(
                    peer, ort_defaults, files, feeds, work, "ort"
                ),
                "NNCF quantize defaults": partial(peer, nncf_defaults, files, feeds, work, "nncf"),
                "edgekit int4": partial(edgekit_variant, src, work, calib, precision="int4"),
            }
            if not args.no_mixed:
                builders["edgekit mixed"] = partial(
                    edgekit_variant, src, work, calib, precision="mixed", max_error=args.budget
                )
            runtimes: dict[str, Any] = {
                "FP32 ORT": fp32,
                "eager torch": TorchRuntime(src.networks, src.spec, threads),
            }
            failed: dict[str, str] = {}
            for name, build in builders.items():
                try:
                    runtimes[name] = OrtRuntime(build(), threads=threads)
                except (EdgekitError, Exception) as e:  # a peer failing is a result
                    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                    failed[name] = f"{type(e).__name__}: {first[:120]}"
                    traceback.print_exc(limit=1)
            errors: dict[str, float] = {}
            for name, rt in list(runtimes.items()):
                try:  # a peer's model may also fail when it runs
                    errors[name] = (
                        0.0
                        if name in ("FP32 ORT", "eager torch")
                        else worst_error(tick_fidelity(fid_programs, fp32, rt, hold.observations()))
                    )
                    time_ticks(program, rt, 1, 2)
                except Exception as e:
                    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                    failed[name] = f"runs but fails: {type(e).__name__}: {first[:160]}"
                    del runtimes[name]
            samples = round_robin(
                {n: partial(ticks_ns, program, rt) for n, rt in runtimes.items()},
                args.rounds,
                args.per_round,
            )
        base, eager = p50_ms(samples["FP32 ORT"]), p50_ms(samples["eager torch"])
        for name in [*runtimes, *failed]:
            if name in failed:
                rows.append({"kind": kind, "variant": name, "failed": failed[name]})
                table.append([kind, name, "fails", "-", "-", failed[name][:60]])
                continue
            t = p50_ms(samples[name])
            rows.append(
                {
                    "kind": kind,
                    "variant": name,
                    "p50_ms": t,
                    "speedup_vs_fp32": base / t,
                    "speedup_vs_eager": eager / t,
                    "worst_rel_l2": errors[name],
                }
            )
            table.append(
                [
                    kind,
                    name,
                    f"{t:.2f}",
                    f"{base / t:.2f}x",
                    f"{eager / t:.2f}x",
                    f"{errors[name] * 100:.2f}%",
                ]
            )
            print(
                f"{kind} {name}: {t:.2f} ms, {base / t:.2f}x, err {errors[name] * 100:.2f}%",
                flush=True,
            )
    print(
        markdown(
            [
                "kind (default)",
                "variant",
                "tick p50 ms",
                "vs FP32 ORT",
                "vs eager torch",
                "worst rel-L2",
            ],
            table,
        )
    )
    print(f"wrote {save('quantize_compare', rows, {'threads': threads, **vars(args)})}")


if __name__ == "__main__":
    main()
