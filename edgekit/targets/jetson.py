"""NVIDIA Jetson targets: TensorRT on the GPU (published figures:
NVIDIA's Jetson Orin / Thor module data sheets; dense INT8 = sparse / 2, FP16 derived)."""

from __future__ import annotations

from typing import ClassVar

from edgekit.targets.base import Target
from edgekit.targets.schemes import TRT_S8S8, Scheme

_STACK = "NVIDIA Jetson module data sheets (dense INT8 = sparse / 2)"
# The TensorRT each JetPack ships (the ONNX parser the op check in export/trt_ops.py follows):
# JetPack 6.1/6.2 (Jetson Linux 36.4, Orin) ships TensorRT 10.3 with CUDA 12.6; JetPack 7.0/7.1
# (Jetson Linux 38.x, Thor) ships TensorRT 10.13 (10.13.3) with CUDA 13.0.
_JP6_TRT = "10.3"
_JP7_TRT = "10.13"


class JetsonTarget(Target):
    """TensorRT engines built on the device from TensorRT-ready ONNX (explicit Q/DQ for INT8)."""

    export_format: ClassVar[str] = "tensorrt"
    estimate_precision: ClassVar[str] = "fp16"
    # Assumptions, stated as such: dense GEMMs reach ~40% of the data-sheet tensor throughput at
    # batch 1 and streaming ~70% of DRAM bandwidth; ~8 us per kernel launch (NVIDIA's published
    # launch latencies are 5-10 us on Orin-class parts), ~50 us per engine enqueue + sync. The
    # 4 MB L2 is treated as no cache.
    efficiency: ClassVar[dict[str, float] | None] = {
        "compute_eff": 0.4,
        "memory_eff": 0.7,
        "op_overhead_s": 8e-6,
        "call_overhead_s": 5e-5,
    }

    def int8_schemes(self) -> list[Scheme]:
        return [TRT_S8S8]

    def why_not_measurable(self) -> str:
        return f"{super().why_not_measurable()}: it needs TensorRT on the Jetson's GPU"


PROFILES: tuple[Target, ...] = (
    JetsonTarget(
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
        notes="33 TOPS / 102 GB/s in Super mode; JetPack 6.2 (TensorRT 10.3)",
        aliases=("orin-nano",),
        tensorrt=_JP6_TRT,
    ),
    JetsonTarget(
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
        notes="JetPack 6.2 (TensorRT 10.3)",
        aliases=("orin-nx",),
        tensorrt=_JP6_TRT,
    ),
    JetsonTarget(
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
        notes="GPU alone ~85 dense INT8 TOPS; JetPack 6.2 (TensorRT 10.3)",
        aliases=("agx-orin",),
        tensorrt=_JP6_TRT,
    ),
    JetsonTarget(
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
        notes="FP4 2070 TFLOPS sparse; JetPack 7 (TensorRT 10.13)",
        aliases=("thor",),
        tensorrt=_JP7_TRT,
    ),
)
