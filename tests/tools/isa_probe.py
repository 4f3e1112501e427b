"""Run INT8 networks on this process's CPU kernels and print their error against FP32 (JSON).

Imports numpy and onnxruntime only, so it starts fast under an emulator:
``qemu-x86_64 -cpu Haswell python tests/tools/isa_probe.py cases.json`` computes what an
AVX2-only CPU computes (QEMU's emulator has no AVX-512), whatever CPU the machine has.

``cases.json``: ``{"NAME": {"fp32": PATH, "int8": PATH, "feeds": NPZ}}``; each NPZ array is
``"<feed index>/<input name>"``. The FP32 reference runs here too (FP32 kernels do not saturate).
Prints ``{"isa": ..., "kernels": {NAME: err}, "exact": {NAME: err}}``: the worst relative L2
over outputs and feeds, on this CPU's INT8 kernels and on the exact INT8 arithmetic.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime as ort


def session(path: str, fused: bool = True) -> ort.InferenceSession:
    """``fused=False``: no graph optimizations, so Q/DQ pairs stay apart and every weighted op
    runs in float on dequantized values: the exact INT8 arithmetic, on no integer kernel."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not fused:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def feeds(npz: str) -> list[dict[str, np.ndarray]]:
    data = np.load(npz)
    out: dict[int, dict[str, np.ndarray]] = {}
    for key in data.files:
        i, name = key.split("/", 1)
        out.setdefault(int(i), {})[name] = data[key]
    return [out[i] for i in sorted(out)]


def worst_rel_l2(case: dict[str, str], fused: bool) -> float:
    ref, q = session(case["fp32"]), session(case["int8"], fused)
    worst = 0.0
    for f in feeds(case["feeds"]):
        for a, b in zip(ref.run(None, f), q.run(None, f), strict=True):
            a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
            worst = max(worst, float(np.linalg.norm(b64 - a64) / (np.linalg.norm(a64) + 1e-12)))
    return worst


def main() -> None:
    from edgekit.isa import host_isa

    with open(sys.argv[1]) as f:
        cases = json.load(f)
    kernels = {name: worst_rel_l2(case, True) for name, case in cases.items()}
    exact = {name: worst_rel_l2(case, False) for name, case in cases.items()}
    print(json.dumps({"isa": host_isa().name, "kernels": kernels, "exact": exact}))


if __name__ == "__main__":
    main()
