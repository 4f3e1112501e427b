"""The host CPU's integer dot-product support: it decides how INT8 must be quantized for a CPU.

onnxruntime's x86 INT8 GEMM/Conv kernels differ by ISA:

* **AVX-512 VNNI / AVX-VNNI / AMX** (``x86-vnni``): VPDPBUSD multiplies u8 x s8 and adds four
  products straight into int32. U8S8 with full 8-bit weights is exact.
* **AVX2 only** (``x86-avx2``): VPMADDUBSW adds *pairs* of u8 x s8 products into a saturating
  int16 (255 x 127 x 2 > 32767). With full-range weights the sums clip: measured on this
  project's AVX2 hosts, the zoo VLA lost 20% relative L2 where 7-bit weights (``reduce_range``)
  lost 1.4%. onnxruntime's quantization docs name the same remedy (reduce_range or U8U8).
* **ARM64** (``arm64``): the NEON / dot-product (SDOT/UDOT) and i8mm kernels accumulate in 32 bits;
  onnxruntime's docs report no saturation issue there.

Detection reads CPUID through numpy's dispatch table (what the process really runs on, also
under an emulator such as ``qemu-x86_64 -cpu Haswell``), plus ``/proc/cpuinfo`` for the flags
numpy does not list (AVX-VNNI, AMX, i8mm). This module imports numpy only.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

X86_VNNI = "x86-vnni"
X86_AVX2 = "x86-avx2"
ARM64 = "arm64"
OTHER = "other"
ISAS = (X86_VNNI, X86_AVX2, ARM64)

_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class CpuIsa:
    """What a CPU offers INT8 kernels.

    Attributes:
        name: ``x86-vnni``, ``x86-avx2``, ``arm64`` or ``other``.
        arch: ``x86_64``, ``arm64`` or the machine string.
        features: the INT8- and BF16-relevant features found (avx2, avx512_vnni, avx_vnni,
            amx_int8, avx512_bf16, amx_bf16, asimddp, i8mm).
        model: the CPU's model name where the OS tells it.
    """

    name: str
    arch: str
    features: tuple[str, ...]
    model: str

    @property
    def has_bf16(self) -> bool:
        """bf16 arithmetic in hardware (AVX-512 BF16 or AMX), which OpenVINO's bf16 uses."""
        return "avx512_bf16" in self.features or "amx_bf16" in self.features

    @property
    def saturates_u8s8(self) -> bool:
        """Full-range U8S8 products clip in this CPU's int16 pair sums (AVX2 without VNNI)."""
        return self.name == X86_AVX2

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "features": list(self.features)}


def _cpuinfo() -> tuple[set[str], str]:
    """Flags (x86 ``flags``, ARM ``Features``) and model name from /proc/cpuinfo, if any."""
    flags: set[str] = set()
    model = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return flags, model
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "model name" and not model:
            model = value.strip()
    return flags, model


def _numpy_features() -> dict[str, bool]:
    import importlib

    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # numpy 1.x
        umath = importlib.import_module("numpy.core._multiarray_umath")
    return dict(umath.__cpu_features__)


def classify(arch: str, cpuid: dict[str, bool], flags: set[str], model: str = "") -> CpuIsa:
    """The ISA class from CPUID features (numpy's names) and the OS's flag list."""
    arch = _ARCH.get(arch.lower(), arch.lower())
    if arch == "x86_64":
        found = []
        if cpuid.get("AVX2"):
            found.append("avx2")
        if cpuid.get("AVX512VNNI"):
            found.append("avx512_vnni")
        # numpy lists neither AVX-VNNI nor AMX: take them from the OS, but only when its flags
        # agree with CPUID on AVX-512 VNNI (an emulator shows the host's /proc/cpuinfo).
        if ("avx512_vnni" in flags) == bool(cpuid.get("AVX512VNNI")):
            found += [f for f in ("avx_vnni", "amx_int8") if f in flags]
        if cpuid.get("AVX512BF16"):
            found.append("avx512_bf16")
        if "amx_bf16" in flags and ("avx512_vnni" in flags) == bool(cpuid.get("AVX512VNNI")):
            found.append("amx_bf16")
        vnni = any(f in found for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
        name = X86_VNNI if vnni else X86_AVX2 if "avx2" in found else OTHER
        return CpuIsa(name, arch, tuple(found), model)
    if arch == "arm64":
        found = ["asimddp"] if cpuid.get("ASIMDDP") or "asimddp" in flags else []
        found += ["i8mm"] if "i8mm" in flags else []
        return CpuIsa(ARM64, arch, tuple(found), model)
    return CpuIsa(OTHER, arch, (), model)


@functools.cache
def host_isa() -> CpuIsa:
    """This process's CPU (cached: it does not change while the process runs)."""
    flags, model = _cpuinfo()
    return classify(platform.machine(), _numpy_features(), flags, model or platform.processor())
