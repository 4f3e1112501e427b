"""Closed-loop task success of every compressed variant of the shipped Reacher teachers.

For each teacher (``zoo:humanoid:reacher``, the MLP controller; ``zoo:diffusion-policy:reacher``,
DDIM-16), build the variants edgekit ships — width-0.5 students (MLP: from the expert's
episodes and from DART-perturbed ones, ``calib_data/reacher-humanoid-dart.npz``), 4- and
2-call step students (diffusion), INT8, INT4 and mixed precision for the CPU, each from the
expert observations in ``calib_data/reacher-*.npz`` — then run every variant and its teacher
for the same seeded episodes of gymnasium Reacher-v5 through onnxruntime (``edgekit.eval``),
and time the whole tick with ``edgekit bench`` (p50, CPU, measured).

Usage: python benchmarks/eval_compare.py [--episodes 50] [--kinds humanoid diffusion-policy]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import markdown, save

from edgekit.bench import BenchConfig, bench
from edgekit.distill import DistillConfig, distill
from edgekit.eval import EvalConfig, evaluate
from edgekit.quantize import Int4Config, Int8Config, MixedConfig, quantize

ROOT = Path(__file__).resolve().parents[1]


def variants(kind: str, ref: str, calib: Path, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"teacher (FP32)": ref}
    q = {
        "int8": Int8Config(latency_ticks=0),
        "int4": Int4Config(latency_ticks=0),
        "mixed (<= 10%)": MixedConfig(max_error=0.1, latency_ticks=0),
    }
    if kind == "diffusion-policy":
        for n in (4, 2):
            cfg = DistillConfig(denoise_steps=n, program="ddim16", steps=300, latency_ticks=0)
            out[f"{n}-step student"] = distill(ref, work / f"steps{n}", cfg, calib).out
    else:
        # distilled on the expert's 4 clean episodes (the calibration set), and on 100
        # episodes of which every other one is DART-perturbed (states off the expert's path)
        cfg = DistillConfig(width=0.5, steps=20000, latency_ticks=0)
        out["width-0.5 student"] = distill(ref, work / "w05", cfg, calib).out
        dart = calib.with_name("reacher-humanoid-dart.npz")
        out["width-0.5 student (DART data)"] = distill(ref, work / "w05d", cfg, dart).out
    for name, qc in q.items():
        out[name] = quantize(ref, work / name.split()[0], qc, calib).out
    if kind == "diffusion-policy":
        qc = Int8Config(latency_ticks=0)
        out["4-step student + INT8"] = quantize(str(out["4-step student"]), work / "s4-int8", qc,
                                                calib).out  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", nargs="+", default=["humanoid", "diffusion-policy"])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            ref = f"zoo:{kind}:reacher"
            calib = ROOT / "calib_data" / f"reacher-{kind}.npz"
            for name, model in variants(kind, ref, calib, Path(tmp) / kind).items():
                teacher = "none" if model == ref else ref
                cfg = EvalConfig(episodes=args.episodes, seed=args.seed, teacher=teacher)
                res = evaluate(str(model), cfg)
                b = bench(str(model), BenchConfig(target="cpu", ticks=100, warmup=10))
                c = res.candidate
                row = {
                    "kind": kind,
                    "variant": name,
                    "success_rate": c.success_rate,
                    "success_ci95": list(c.success_ci),
                    "teacher_success_rate": res.teacher.success_rate if res.teacher else None,
                    "success_ratio": res.ratio if res.teacher else 1.0,
                    "return_mean": c.return_mean,
                    "tick_p50_ms": b.stats.p50,  # type: ignore[union-attr]
                }
                rows.append(row)
                print(f"{kind:16s} {name:22s} success {c.success_rate:.2f} "
                      f"[{c.success_ci[0]:.2f}, {c.success_ci[1]:.2f}] ratio "
                      f"{row['success_ratio'] or 0:.2f}  p50 {row['tick_p50_ms']:.3f} ms",
                      flush=True)  # fmt: skip
    path = save("eval_compare", rows, vars(args))
    print(
        markdown(
            ["teacher", "variant", "success [95% CI]", "ratio to teacher", "tick p50 ms (CPU)"],
            [
                [r["kind"], r["variant"],
                 "{:.2f} [{:.2f}, {:.2f}]".format(r["success_rate"], *r["success_ci95"]),
                 f"{r['success_ratio']:.2f}" if r["success_ratio"] is not None else "n/a",
                 f"{r['tick_p50_ms']:.3f}"]
                for r in rows
            ],
        )
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
