"""CPU targets: this host (INT8 with 7-bit weights on any x86 host, so the artifact is right on
every x86 CPU; 8-bit on ARM64), or a named CPU class, so an artifact is built for the robot's
CPU rather than the build machine's."""

from __future__ import annotations

import platform
from typing import ClassVar

from edgekit.isa import ARM64, X86_AVX2, X86_VNNI, host_isa
from edgekit.targets.base import Target
from edgekit.targets.schemes import CPU_SCHEMES, CPU_U8S8_7BIT, Scheme


class CpuTarget(Target):
    """onnxruntime on a CPU: measured where the architecture matches, never estimated."""

    estimate_precision: ClassVar[str] = "fp32"

    def int8_schemes(self) -> list[Scheme]:
        isa = self.cpu_isa()
        if self.isa is None and isa.arch == "x86_64":
            # This host, x86: 7-bit weights, whatever its own class. The artifact then computes
            # the same on every x86 CPU (exact on VNNI, no saturation on AVX2), so one built on a
            # VNNI workstation does not silently break on an AVX2 robot; the cost measured on the
            # zoo's tiny models was within noise (docs/benchmarks.md). `cpu-x86-vnni` keeps 8-bit
            # weights for a robot known to have VNNI.
            return [CPU_U8S8_7BIT]
        # a named class, or an ARM64 host; a CPU of no known class gets the safe scheme
        return [CPU_SCHEMES.get(isa.name, CPU_U8S8_7BIT)]

    def why_not_measurable(self) -> str:
        return f"{super().why_not_measurable()}: it needs that CPU (this host is {host_isa().arch})"


PROFILES: tuple[Target, ...] = (
    CpuTarget(
        "cpu",
        "cpu",
        f"this host ({platform.machine()}, {host_isa().name})",
        "CPU",
        "onnxruntime",
        None,
        None,
        None,
        ("fp32", "int8", "int4"),
        measurable_here=True,
        source="measured on this machine",
        aliases=("host",),
        notes="INT8: 7-bit weights on x86 (right on any x86 CPU), 8-bit on ARM64",
    ),
    *(
        CpuTarget(
            f"cpu-{isa}",
            "cpu",
            device,
            "CPU",
            "onnxruntime",
            None,
            None,
            None,
            ("fp32", "int8", "int4"),
            # Measured here when this host has the same architecture: the artifact runs, and the
            # report says when this host's ISA class is not the one named.
            measurable_here=host_isa().arch == ("arm64" if isa == ARM64 else "x86_64"),
            source="measured on this machine when its architecture matches",
            notes=notes,
            isa=isa,
        )
        for isa, device, notes in (
            (X86_VNNI, "an x86-64 CPU with AVX-512 VNNI / AVX-VNNI / AMX", "U8S8, 8-bit weights"),
            (X86_AVX2, "an x86-64 CPU with AVX2, no VNNI", "U8S8, 7-bit weights (no saturation)"),
            (ARM64, "an ARM64 CPU (Jetson / Qualcomm cores)", "U8S8, 8-bit weights"),
        )
    ),
)
