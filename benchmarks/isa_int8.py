"""INT8 fidelity of the CPU schemes on both x86 ISA classes: this host, and an AVX2-only CPU.

For every zoo kind's `tiny` preset, two artifacts: `--target cpu` (7-bit weights on any x86 host)
and `--target cpu-x86-vnni` (8-bit weights), each quantized and checked natively on this host and
under QEMU's user-mode emulator as an AVX2-only CPU (`qemu-x86_64 -cpu Haswell`, no AVX-512), on
the shipped calibration set, whole-tick fidelity on the held-out ticks. The 8-bit scheme on the
emulated AVX2 CPU is what every AVX2 host computed before the scheme followed the ISA. Fidelity
only: an emulator's timings mean nothing, so no latency is taken there.

    python benchmarks/isa_int8.py [--kinds vla humanoid ...]

Needs `qemu-user` (Debian: `apt-get install qemu-user`). About 25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import save

from edgekit.isa import host_isa

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("diffusion-policy", "humanoid", "omni-body", "reward-model", "vla", "world-model")
EMULATE = ["qemu-x86_64", "-cpu", "Haswell"]


def quantize(kind: str, target: str, work: Path, emulate: bool) -> dict:
    out = work / f"{kind}-{target}-{'emu' if emulate else 'native'}"
    cmd = [
        *(EMULATE if emulate else []),
        sys.executable,
        "-m",
        "edgekit",
        "quantize",
        f"zoo:{kind}:tiny",
        "--target",
        target,
        "--calib",
        str(ROOT / "calib_data" / f"{kind}-tiny.npz"),
        "--latency-ticks",
        "0",
        "--out",
        str(out),
        "--json",
        str(out) + ".json",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {r.stderr[-500:]}")
    rep = json.loads(Path(str(out) + ".json").read_text())
    return {
        "scheme": rep["scheme"],
        "host_isa": rep["cpu_isa"]["host"]["name"],
        "worst_rel_l2": rep["fidelity"]["worst_rel_l2"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    args = ap.parse_args()
    host = host_isa()
    rows = []
    print(f"host: {host.model}, {host.name} ({' '.join(host.features)}); emulated: x86-avx2")
    cols = ["kind (tiny)", "cpu, this host", "cpu, AVX2 (emulated)", "ratio",
            "cpu-x86-vnni, this host", "cpu-x86-vnni, AVX2 (emulated)"]  # fmt: skip
    print("| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in args.kinds:
            row = {
                f"{t}/{'emu' if e else 'native'}": quantize(kind, t, work, emulate=e)
                for t in ("cpu", "cpu-x86-vnni")
                for e in (False, True)
            }
            err = {k: v["worst_rel_l2"] for k, v in row.items()}
            a, b = err["cpu/native"], err["cpu/emu"]
            ratio = max(a, b) / max(min(a, b), 1e-12)
            rows.append({"kind": kind, **row, "ratio": ratio})
            print(
                f"| {kind} | {a * 100:.2f}% | {b * 100:.2f}% | {ratio:.2f}x "
                f"| {err['cpu-x86-vnni/native'] * 100:.2f}% "
                f"| {err['cpu-x86-vnni/emu'] * 100:.2f}% |"
            )
    save("isa_int8", rows, {"emulator": " ".join(EMULATE), "kinds": args.kinds})


if __name__ == "__main__":
    main()
