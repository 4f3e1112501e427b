"""Hardware target profiles: published figures, default budgets, and whether this host can
measure them.

Figures come from vendors' data sheets as gathered in the project's ``shared/STACK.md``
(dense INT8 = sparse / 2; FP16 derived from it). A target that is not this machine cannot be
*measured* here; edgekit says so instead of printing a number for it.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import Any

from edgekit.isa import ARM64, X86_AVX2, X86_VNNI, CpuIsa, host_isa
from edgekit.registry import Registry

# The share of the loop period the stack gives the model tick by default; the rest is left for
# sensor I/O, communication and the controller around it.
DEFAULT_HEADROOM = 0.8


@dataclass(frozen=True)
class Target:
    name: str
    family: str  # "cpu", "jetson", "qualcomm"
    device: str
    accelerator: str
    runtime: str  # what runs models there: onnxruntime, tensorrt, qnn
    int8_tops: float | None  # dense
    fp16_tflops: float | None
    memory_gbs: float | None
    precisions: tuple[str, ...]
    measurable_here: bool = False
    headroom: float = DEFAULT_HEADROOM
    source: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    isa: str | None = None  # CPU targets: the ISA class it names; None = this host's

    def cpu_isa(self) -> CpuIsa:
        """The CPU ISA an artifact for this target is made for (CPU targets)."""
        host = host_isa()
        if self.isa is None or self.isa == host.name:
            return host
        return CpuIsa(self.isa, "arm64" if self.isa == ARM64 else "x86_64", (), "")

    def budget_ms(self, hz: float) -> float:
        """Default tick budget at a loop rate: the period times the headroom."""
        return 1000.0 / hz * self.headroom

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["precisions"] = list(self.precisions)
        d["aliases"] = list(self.aliases)
        return d


TARGETS: Registry[Target] = Registry("target")

_STACK = "vendor data sheets via shared/STACK.md"

for _t in (
    Target(
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
        notes="INT8 scheme follows this host's ISA (edgekit.isa)",
    ),
    *(
        Target(
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
    Target(
        "jetson-orin-nano",
        "jetson",
        "Jetson Orin Nano 8GB",
        "Ampere GPU (no DLA)",
        "tensorrt",
        20.0,
        10.0,
        68.0,
        ("fp32", "fp16", "int8"),
        source=_STACK,
        notes="33 TOPS / 102 GB/s in Super mode",
        aliases=("orin-nano",),
    ),
    Target(
        "jetson-orin-nx",
        "jetson",
        "Jetson Orin NX 16GB",
        "Ampere GPU + 2 DLA",
        "tensorrt",
        50.0,
        15.0,
        102.4,
        ("fp32", "fp16", "int8"),
        source=_STACK,
        aliases=("orin-nx",),
    ),
    Target(
        "jetson-agx-orin",
        "jetson",
        "Jetson AGX Orin 64GB",
        "Ampere GPU + 2 DLA",
        "tensorrt",
        138.0,
        42.0,
        204.8,
        ("fp32", "fp16", "int8"),
        source=_STACK,
        notes="GPU alone ~85 dense INT8 TOPS",
        aliases=("agx-orin",),
    ),
    Target(
        "jetson-thor",
        "jetson",
        "Jetson AGX Thor",
        "Blackwell GPU (FP8/FP4)",
        "tensorrt",
        None,
        259.0,
        273.0,
        ("fp32", "fp16", "fp8", "int8", "fp4"),
        source=_STACK,
        notes="FP4 2070 TFLOPS sparse",
        aliases=("thor",),
    ),
    Target(
        "qcs6490",
        "qualcomm",
        "Qualcomm QCS6490 (RB3 Gen 2)",
        "Hexagon v68 HTP",
        "qnn",
        12.0,
        None,
        51.0,
        ("int8", "int16"),
        source=_STACK,
        notes="INT8 only: FP16 is rejected; bandwidth unverified",
        aliases=("qualcomm-qcs6490", "rb3"),
    ),
    Target(
        "qrb5165",
        "qualcomm",
        "Qualcomm QRB5165 (RB5)",
        "Hexagon 698",
        "qnn",
        15.0,
        None,
        44.0,
        ("int8", "int16"),
        source=_STACK,
        aliases=("qualcomm-qrb5165", "rb5"),
    ),
    Target(
        "qcs8550",
        "qualcomm",
        "Qualcomm QCS8550",
        "Hexagon v73 HTP",
        "qnn",
        48.0,
        None,
        67.0,
        ("int8", "int16", "fp16"),
        source=_STACK,
        notes="bandwidth unverified",
        aliases=("qualcomm-qcs8550",),
    ),
    Target(
        "sd8gen3",
        "qualcomm",
        "Snapdragon 8 Gen 3",
        "Hexagon v75 HTP",
        "qnn",
        45.0,
        None,
        76.8,
        ("int8", "int16", "fp16"),
        source=_STACK,
        aliases=("snapdragon-8-gen-3", "qualcomm-sd8gen3"),
    ),
):
    TARGETS.add(_t.name, _t, _t.aliases)


def get_target(name: str) -> Target:
    return TARGETS.get(name)


def why_not_measurable(t: Target) -> str:
    needs = {
        "tensorrt": "TensorRT on the Jetson's GPU",
        "qnn": "the Hexagon NPU of that SoC",
        "onnxruntime": f"that CPU (this host is {host_isa().arch})",
    }
    return (
        f"target {t.name!r} ({t.device}) cannot be measured on this machine: it needs "
        f"{needs.get(t.runtime, t.runtime)}"
    )
