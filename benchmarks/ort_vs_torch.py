"""(a) Whole-tick latency of every zoo default: onnxruntime FP32 vs eager PyTorch, one run.

Usage: python benchmarks/ort_vs_torch.py [--rounds 5] [--per-round 6] [--kinds vla,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, p50_ms, round_robin, save

from edgekit.export import export_onnx
from edgekit.loader import TorchSource, load
from edgekit.loop import LoopProgram, Runtime
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, TorchRuntime, default_threads
from edgekit.zoo import ZOO


# (kind, program): the default program of every kind, plus the planning tick of the world model.
def ticks_ns(program: LoopProgram, rt: Runtime, n: int) -> np.ndarray:
    return time_ticks(program, rt, n, warmup=1).tick_ns


CASES = [(k, None) for k in ZOO.names()] + [("world-model", "plan")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=6)
    ap.add_argument("--kinds", default="")
    args = ap.parse_args()
    threads = default_threads()
    only = set(filter(None, args.kinds.split(",")))
    rows, table = [], []
    for kind, prog_name in CASES:
        if only and kind not in only:
            continue
        src = load(f"zoo:{kind}:default")
        assert isinstance(src, TorchSource)
        with tempfile.TemporaryDirectory() as tmp:
            res = export_onnx(src, Path(tmp) / "a", tick_checks=1)
            files = {n: Path(tmp) / "a" / e["file"] for n, e in res.manifest.files.items()}
            ort_rt = OrtRuntime(files, threads=threads)
            torch_rt = TorchRuntime(src.networks, src.spec, threads)
            pspec = src.spec.programs[prog_name] if prog_name else src.spec.program
            program = build_program(pspec)
            for rt in (ort_rt, torch_rt):  # warm both before the clock
                time_ticks(program, rt, 1, 2)
            samples = round_robin(
                {
                    "ort": partial(ticks_ns, program, ort_rt),
                    "torch": partial(ticks_ns, program, torch_rt),
                },
                args.rounds,
                args.per_round,
            )
        o, t = p50_ms(samples["ort"]), p50_ms(samples["torch"])
        calls = " + ".join(f"{n} x{k}" for n, k in program.calls_per_tick().items())
        rows.append(
            {
                "kind": kind,
                "program": program.name,
                "calls": program.calls_per_tick(),
                "ort_p50_ms": o,
                "torch_p50_ms": t,
                "torch_over_ort": t / o,
                "ticks_each": int(samples["ort"].size),
            }
        )
        table.append([kind, program.name, calls, f"{o:.2f}", f"{t:.2f}", f"{t / o:.2f}x"])
        print(f"{kind} {program.name}: ort {o:.2f} ms, torch {t:.2f} ms", flush=True)
    print(
        markdown(
            [
                "kind (default preset)",
                "program",
                "calls/tick",
                "ORT FP32 p50 ms",
                "eager torch p50 ms",
                "torch / ORT",
            ],
            table,
        )
    )
    print(f"wrote {save('ort_vs_torch', rows, {'threads': threads, **vars(args)})}")


if __name__ == "__main__":
    main()
