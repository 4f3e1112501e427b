"""CPU INT8 by ISA: detection, the scheme per ISA, and each scheme checked on its ISA's kernels.

The AVX2 kernels are checked on any x86 host: natively where the host has no VNNI, else under
QEMU's user-mode emulator (``qemu-x86_64 -cpu Haswell``: no AVX-512 at all), which computes what
an AVX2-only CPU computes. The VNNI / ARM64 schemes are checked natively on a VNNI host; their
kernels accumulate in 32 bits, so everywhere they are also checked against the exact INT8
arithmetic (Q/DQ unfused, float ops on dequantized values).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.isa import ARM64, OTHER, X86_AVX2, X86_VNNI, classify, host_isa
from tests.conftest import ROOT

HASWELL = {"AVX2": True}
ICELAKE = {"AVX2": True, "AVX512VNNI": True}


@pytest.mark.parametrize(
    ("arch", "cpuid", "flags", "want", "features"),
    [
        ("x86_64", ICELAKE, {"avx2", "avx512_vnni"}, X86_VNNI, ("avx2", "avx512_vnni")),
        ("x86_64", HASWELL, {"avx2"}, X86_AVX2, ("avx2",)),
        # Alder Lake: AVX-VNNI (VEX), no AVX-512: numpy does not list it, the OS does
        ("x86_64", HASWELL, {"avx2", "avx_vnni"}, X86_VNNI, ("avx2", "avx_vnni")),
        ("AMD64", HASWELL, {"avx2", "amx_int8"}, X86_VNNI, ("avx2", "amx_int8")),
        # an emulated AVX2 CPU on a VNNI host: /proc/cpuinfo shows the host, CPUID does not
        ("x86_64", HASWELL, {"avx2", "avx512_vnni", "amx_int8"}, X86_AVX2, ("avx2",)),
        ("x86_64", {}, set(), OTHER, ()),
        ("aarch64", {"ASIMDDP": True}, {"asimd", "i8mm"}, ARM64, ("asimddp", "i8mm")),
        ("arm64", {}, set(), ARM64, ()),
        ("riscv64", {}, set(), OTHER, ()),
    ],
)
def test_classify(arch, cpuid, flags, want, features):
    isa = classify(arch, cpuid, flags)
    assert (isa.name, isa.features) == (want, features)
    assert isa.saturates_u8s8 == (want == X86_AVX2)


def test_scheme_per_cpu_target():
    from edgekit.targets import get_target

    chosen = {n: get_target(n).int8_schemes()[0] for n in ("cpu-x86-vnni", "cpu-x86-avx2")}
    assert not chosen["cpu-x86-vnni"].reduce_range
    assert chosen["cpu-x86-avx2"].reduce_range  # 7-bit weights: no int16 saturation
    assert not get_target("cpu-arm64").int8_schemes()[0].reduce_range
    # this host, x86: 7-bit weights whatever its class, so the artifact is right on any x86 CPU
    host = get_target("cpu").int8_schemes()[0]
    assert host.isa == (ARM64 if host_isa().arch == "arm64" else X86_AVX2)


ISA_TARGETS = {X86_VNNI: "cpu-x86-vnni", X86_AVX2: "cpu-x86-avx2", ARM64: "cpu-arm64"}


@pytest.fixture(scope="module")
def per_isa(tmp_path_factory) -> dict[str, dict]:
    """The zoo VLA (its INT8 saturates on AVX2) quantized for each ISA, with held-out feeds."""
    from edgekit.calib import load_calibration
    from edgekit.export import export_onnx
    from edgekit.loader import load
    from edgekit.loop.capture import capture
    from edgekit.models import build_program
    from edgekit.quantize import Int8Config, quantize
    from edgekit.runtimes import OrtRuntime

    work = tmp_path_factory.mktemp("isa")
    fp32 = load(str(export_onnx(load("zoo:vla:tiny"), work / "fp32").out))
    prog = build_program(fp32.spec.program)
    calib = ROOT / "calib_data" / "vla-tiny.npz"
    _, held = load_calibration(calib, prog.observation_spec()).split(0.25)
    feeds, _ = capture({"p": prog}, OrtRuntime(fp32.files, threads=1), held.observations(), 8, 0)
    cases = {}
    for isa, target in ISA_TARGETS.items():
        q = quantize(fp32, work / isa, Int8Config(target=target, latency_ticks=0), calib)
        for net, path in fp32.files.items():
            npz = work / f"{isa}-{net}-feeds.npz"
            np.savez(npz, **{f"{i}/{k}": v for i, f in enumerate(feeds[net]) for k, v in f.items()})
            cases[f"{isa}/{net}"] = {
                "fp32": str(path),
                "int8": str(q.out / path.name),
                "feeds": str(npz),
                "reduce_range": q.report["scheme_detail"]["reduce_range"],
                "made_for": q.report["cpu_isa"]["made_for"],
            }
    # TensorRT's S8S8 explicit Q/DQ: x86 CPUs run s8 activations through the same U8S8 kernels
    q = quantize(fp32, work / "trt", Int8Config(target="jetson-agx-orin", latency_ticks=0), calib)
    for net, path in fp32.files.items():
        npz = work / f"{X86_VNNI}-{net}-feeds.npz"  # the same held-out feeds
        cases[f"tensorrt/{net}"] = {"fp32": str(path), "int8": str(q.out / path.name),
                                    "feeds": str(npz), "reduce_range": False,
                                    "made_for": "tensorrt"}  # fmt: skip
    spec = work / "cases.json"
    spec.write_text(json.dumps(cases))
    return {"cases": cases, "spec": spec}


def probe(spec: Path, emulate_avx2: bool = False) -> dict:
    cmd = [sys.executable, str(ROOT / "tests" / "tools" / "isa_probe.py"), str(spec)]
    if emulate_avx2:
        cmd = ["qemu-x86_64", "-cpu", "Haswell", *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


# Per-network relative L2 the zoo VLA's INT8 networks must stay under on the kernels of the ISA
# they are made for (7-bit weights lose a little more than 8-bit ones).
TOLERANCE = {X86_VNNI: 0.04, ARM64: 0.04, X86_AVX2: 0.05}


def _check_own_kernels(per_isa: dict, res: dict, isas: tuple[str, ...]) -> None:
    for name, case in per_isa["cases"].items():
        isa = case["made_for"]
        if isa not in isas:  # (TensorRT artifacts are not made for a CPU's kernels)
            continue
        err, exact = res["kernels"][name], res["exact"][name]
        assert err <= TOLERANCE[isa], (name, res["isa"], err)
        # the kernels add (almost) nothing to the INT8 arithmetic: no saturation
        assert err <= 1.25 * exact + 1e-3, (name, res["isa"], err, exact)


def test_each_isa_scheme_on_its_own_kernels(per_isa):
    host = host_isa()
    if host.arch != "x86_64":
        pytest.skip(f"x86 INT8 kernels are checked on x86 hosts (this is {host.arch})")
    native = probe(per_isa["spec"])
    assert native["isa"] == host.name
    if host.name == X86_VNNI:  # VNNI kernels: what the VNNI and ARM64 schemes are made for
        _check_own_kernels(per_isa, native, (X86_VNNI, ARM64, X86_AVX2))
    if host.name == X86_AVX2:
        avx2 = native
    elif shutil.which("qemu-x86_64"):
        avx2 = probe(per_isa["spec"], emulate_avx2=True)
    else:
        pytest.skip("no AVX2-only kernels to check on: install qemu-user (make test does)")
    assert avx2["isa"] == X86_AVX2
    _check_own_kernels(per_isa, avx2, (X86_AVX2,))
    # ...and the reason for the per-ISA scheme: full-range weights saturate on AVX2 kernels
    worst = {
        isa: max(avx2["kernels"][n] for n, c in per_isa["cases"].items() if c["made_for"] == isa)
        for isa in (X86_VNNI, X86_AVX2)
    }
    assert worst[X86_VNNI] > 3 * worst[X86_AVX2], worst
    # ...and why TensorRT's INT8 is checked on the exact arithmetic: the AVX2 kernels saturate
    # on it, TensorRT's int32 accumulation does not
    for name in (n for n, c in per_isa["cases"].items() if c["made_for"] == "tensorrt"):
        assert avx2["exact"][name] <= TOLERANCE[X86_VNNI], (name, avx2["exact"][name])
        assert avx2["kernels"][name] > 3 * avx2["exact"][name], (name, avx2)


def test_the_schemes_differ_only_in_weight_range(per_isa):
    made = {c["made_for"]: c["reduce_range"] for c in per_isa["cases"].values()}
    assert made == {X86_VNNI: False, ARM64: False, X86_AVX2: True, "tensorrt": False}
