"""Can TensorRT's ONNX parser take this graph? Checked here, before any device.

The tables follow onnx-tensorrt's ``docs/operators.md`` for TensorRT 10.x (opset 9-24): ops
marked ``N`` there, ops outside the standard domain (onnxruntime contrib ops such as
``MatMulNBits``), and the restrictions that matter for the zoo and for exported user models
(zero-point-free Q/DQ, 2D/3D pooling without dilation, Resize modes, training-mode Dropout,
only the first LayerNormalization output, UINT8 only at the graph boundary, DOUBLE tensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SOURCE = "onnx-tensorrt docs/operators.md, TensorRT 10.x (opset 9 to 24)"
OPSET_RANGE = (9, 24)

# "N" in the TensorRT 10 matrix (the ops a robot model might contain)
UNSUPPORTED = {
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr",
    "BitwiseXor", "Col2Im", "CenterCropPad", "Compress", "ConcatFromSequence", "ConvInteger",
    "DFT", "Det", "DynamicQuantizeLinear", "ImageDecoder", "MatMulInteger", "MaxRoiPool",
    "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
    "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul",
    "RegexFullMatch", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "SequenceMap", "SoftmaxCrossEntropyLoss",
    "SplitToSequence", "StringConcat", "StringNormalizer", "StringSplit", "TfIdfVectorizer",
    "Unique",
}  # fmt: skip

RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric",
                "align_corners"}  # fmt: skip
RESIZE_MODES = {"nearest", "linear"}


@dataclass(frozen=True)
class Offence:
    node: str
    op_type: str
    why: str

    def __str__(self) -> str:
        return f"{self.node or '(unnamed)'} ({self.op_type}): {self.why}"


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def check(model: Any) -> list[Offence]:
    """Every node TensorRT 10's ONNX parser would reject, with the reason."""
    import onnx
    from onnx import numpy_helper

    out: list[Offence] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        out.append(Offence("(model)", "opset", f"opset {opset} outside {OPSET_RANGE}"))
    inits = {i.name: i for i in model.graph.initializer}
    boundary = {v.name for v in [*model.graph.input, *model.graph.output]}
    used = {i for n in model.graph.node for i in n.input}
    for node in model.graph.node:
        op, name = node.op_type, node.name

        def bad(why: str, node: Any = node, op: str = op, name: str = name) -> None:
            out.append(Offence(name, op, why))

        if node.domain not in ("", "ai.onnx"):
            bad(f"custom-domain op ({node.domain}); TensorRT parses standard ONNX ops only")
            continue
        if op in UNSUPPORTED:
            bad("not supported by TensorRT's ONNX parser")
            continue
        if op in ("QuantizeLinear", "DequantizeLinear"):
            zp = node.input[2] if len(node.input) > 2 else ""
            if zp and zp in inits and np.any(numpy_helper.to_array(inits[zp]) != 0):
                bad("zero point must be 0 (TensorRT quantization is symmetric)")
            if zp and zp in inits and inits[zp].data_type == onnx.TensorProto.UINT8:
                bad("uint8 quantization; TensorRT takes int8 (signed, symmetric) Q/DQ")
        if op in ("MaxPool", "AveragePool"):
            k = _attr(node, "kernel_shape", [])
            if len(k) not in (2, 3):
                bad(f"{len(k)}D pooling; TensorRT pools in 2D or 3D only")
            if any(d != 1 for d in _attr(node, "dilations", [])):
                bad("pooling dilations must be all ones")
            if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
                bad("the Indices output is unsupported")
        if op == "Resize":
            coord = _attr(node, "coordinate_transformation_mode", "half_pixel")
            mode = _attr(node, "mode", "nearest")
            if coord not in RESIZE_COORD:
                bad(f"coordinate_transformation_mode {coord!r} unsupported")
            if mode not in RESIZE_MODES:
                bad(f"mode {mode!r} unsupported (nearest, linear)")
            if _attr(node, "antialias", 0):
                bad("antialiasing unsupported")
        if op == "Dropout" and len(node.input) > 2 and node.input[2]:
            t = inits.get(node.input[2])
            if t is None or bool(numpy_helper.to_array(t)):
                bad("training_mode must be an initializer that is False")
        if op == "LayerNormalization" and any(o and o in used for o in node.output[1:]):
            bad("only the first output (Y) is supported")
        if op == "ScatterND" and _attr(node, "reduction", "none") != "none":
            bad("reduction other than none is unsupported")
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        et = vi.type.tensor_type.elem_type
        if et == onnx.TensorProto.UINT8 and vi.name not in boundary:
            out.append(Offence(vi.name, "tensor", "UINT8 only at network inputs/outputs"))
        if et == onnx.TensorProto.DOUBLE:
            out.append(Offence(vi.name, "tensor", "DOUBLE is cast to FLOAT by TensorRT"))
    return out
