"""Quantization schemes, chosen to fit the target's runtime.

* cpu (onnxruntime): U8S8 QDQ, uint8 asymmetric activations and int8 symmetric per-channel
  weights (s8 activations were slower here: fewer fusions), by the CPU's ISA
  (``edgekit.isa``): full 8-bit weights where the kernels accumulate in 32 bits (x86 VNNI,
  ARM64), 7-bit weights (``reduce_range``) on x86 AVX2 without VNNI, whose int16 pair sums
  saturate on full-range weights.
* jetson (TensorRT): S8S8 explicit Q/DQ, symmetric, zero points 0, Q/DQ only on the inputs of
  Conv/MatMul/Gemm: implicit INT8 calibration is deprecated, and TensorRT fuses input Q/DQ
  into its INT8 kernels.
* qualcomm (HTP): A8W8 or A16W8 per the QNN rules (``get_qnn_qdq_config``): the HTP runs fixed
  point only, and 16-bit activations recover what 8-bit loses.

On every scheme only the weighted ops (Conv, ConvTranspose, Gemm, MatMul with a weight) are
quantized by default: quantizing Add/Mul/Softmax/LayerNorm cost both error and speed here, and
MatMuls between two activations (attention scores) are left in float.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from edgekit.isa import ARM64, X86_AVX2, X86_VNNI

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Scheme:
    name: str
    backend: str  # "ort" (onnxruntime quantize_static) or "qnn" (get_qnn_qdq_config)
    activations: str  # uint8 | int8 | uint16
    weights: str  # int8 | uint8
    activation_symmetric: bool
    weight_symmetric: bool
    per_channel: bool
    op_types: tuple[str, ...] = WEIGHTED_OPS
    quantize_outputs: bool = True  # False: Q/DQ on inputs of weighted ops only (TensorRT)
    # False: biases stay float (TensorRT's DequantizeLinear takes int8/fp8 only, not int32)
    quantize_bias: bool = True
    runs_on: str = "onnxruntime CPU"
    reduce_range: bool = False  # 7-bit weights: no int16 saturation in AVX2 U8S8 kernels
    isa: str | None = None  # the CPU ISA the scheme is made for (CPU schemes only)
    # Fidelity is checked on onnxruntime's fused INT8 kernels when the artifact runs on them
    # (CPU); for another runtime (TensorRT) on the unfused Q/DQ graph: the exact INT8 arithmetic
    # its int32-accumulating kernels compute, on any host (AVX2 kernels would saturate).
    ort_kernels: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "op_types": list(self.op_types)}


CPU_U8S8 = Scheme(
    "cpu-u8s8",
    "ort",
    "uint8",
    "int8",
    False,
    True,
    True,
    runs_on="onnxruntime CPU, x86 VNNI kernels (32-bit accumulation)",
    isa=X86_VNNI,
)
CPU_ARM64_U8S8 = replace(
    CPU_U8S8, runs_on="onnxruntime CPU, ARM64 dot-product kernels (32-bit accumulation)", isa=ARM64
)
CPU_U8S8_7BIT = replace(
    CPU_U8S8,
    name="cpu-u8s8-7bit",
    runs_on="onnxruntime CPU, x86 AVX2 kernels (int16 pair sums: 7-bit weights do not saturate)",
    reduce_range=True,
    isa=X86_AVX2,
)
# By the ISA the artifact will run on; a CPU of no known class gets the scheme that is safe
# everywhere.
CPU_SCHEMES = {X86_VNNI: CPU_U8S8, X86_AVX2: CPU_U8S8_7BIT, ARM64: CPU_ARM64_U8S8}
TRT_S8S8 = Scheme(
    "tensorrt-s8s8",
    "ort",
    "int8",
    "int8",
    True,
    True,
    True,
    quantize_outputs=False,
    quantize_bias=False,
    runs_on="TensorRT (strongly typed, explicit Q/DQ); checked here on the exact INT8 arithmetic",
    ort_kernels=False,
)
QNN_A8W8 = Scheme(
    "qnn-a8w8",
    "qnn",
    "uint8",
    "uint8",
    False,
    False,
    False,
    runs_on="Qualcomm HTP (onnxruntime-qnn simulator here)",
)
QNN_A16W8 = Scheme(
    "qnn-a16w8",
    "qnn",
    "uint16",
    "uint8",
    False,
    False,
    False,
    runs_on="Qualcomm HTP (onnxruntime-qnn simulator here)",
)
