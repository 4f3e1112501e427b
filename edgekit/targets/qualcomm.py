"""Qualcomm targets: the Hexagon NPU (HTP) through QNN context binaries (published figures:
Qualcomm's QCS6490 / QRB5165 product briefs)."""

from __future__ import annotations

from typing import ClassVar

from edgekit.targets.base import Target
from edgekit.targets.schemes import QNN_A8W8, QNN_A16W8, Scheme

_STACK = "Qualcomm product briefs (QCS6490, QRB5165)"


class QualcommTarget(Target):
    """Fixed-point graphs on the HTP: A8W8, or A16W8 when the error budget needs it."""

    export_format: ClassVar[str] = "qnn"
    estimate_precision: ClassVar[str] = "int8"
    # Assumptions, stated as such: ~30% of the data-sheet INT8 TOPS on these small
    # convolution/transformer graphs, ~60% of LPDDR bandwidth, ~5 us per op in a single QNN graph
    # (no per-op launch from the CPU, but per-op HVX/HMX scheduling), ~100 us per graph execute
    # through FastRPC. INT16 activations run at half the INT8 rate.
    efficiency: ClassVar[dict[str, float] | None] = {
        "compute_eff": 0.3,
        "memory_eff": 0.6,
        "op_overhead_s": 5e-6,
        "call_overhead_s": 1e-4,
    }

    def int8_schemes(self) -> list[Scheme]:
        return [QNN_A8W8, QNN_A16W8]

    def why_not_measurable(self) -> str:
        return f"{super().why_not_measurable()}: it needs the Hexagon NPU of that SoC"


PROFILES: tuple[Target, ...] = (
    QualcommTarget(
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
    QualcommTarget(
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
    QualcommTarget(
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
    QualcommTarget(
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
)
