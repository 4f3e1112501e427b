"""Per-op FLOPs and bytes moved of an ONNX graph, at the precision it will run in.

Shapes come from ONNX shape inference with the network's dynamic axes fixed (batch 1, or the
sizes the loop program feeds). FLOPs: 2 x multiply-adds for Conv / ConvTranspose / MatMul /
Gemm / MatMulNBits; a few operations per element for normalisations and Softmax; one per output
element otherwise. Bytes: every activation read and written at the activation width of the
precision (4 B FP32, 2 B FP16, 1 B for tensors between Q/DQ pairs) plus every weight at its
stored width (int8 weights 1 B, packed int4 0.5 B). Q/DQ nodes are counted as fused into their
consumer (as TensorRT, onnxruntime and QNN do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

GEMM_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm", "MatMulNBits", "MatMulInteger"}
FUSED = {"QuantizeLinear", "DequantizeLinear", "Identity", "Constant", "Shape", "Reshape",
         "Flatten", "Squeeze", "Unsqueeze"}  # fmt: skip
NORM_FLOPS = {"LayerNormalization": 8, "GroupNormalization": 8, "InstanceNormalization": 8,
              "BatchNormalization": 2, "Softmax": 5, "Erf": 8, "Gelu": 8, "Tanh": 6,
              "Sigmoid": 4, "Mish": 10, "Softplus": 6, "Exp": 4, "Log": 4}  # fmt: skip


@dataclass(frozen=True)
class OpCost:
    name: str
    op_type: str
    flops: float
    bytes: float  # activations read + written + weights read
    weight_bytes: float
    fused: bool = False  # costs nothing on its own (folded into a neighbour)
    elements: int = 0  # output elements
    int8: bool = False  # a weighted op between Q/DQ pairs (runs on integer units)
    rank: int = 0  # of the first output
    act_bytes: float = 4.0  # width of a float activation at the graph's precision


def _elem_bytes(dtype: int) -> float:
    import onnx

    if dtype in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
        return 0.5
    try:
        return float(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(dtype)).itemsize)
    except (KeyError, TypeError):
        return 4.0


def _shapes(model: Any, dims: dict[str, int]) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (shape, elem type) for every value with a fully known shape."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        for d in inp.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_value = int(dims.get(d.dim_param, 1))
    del m.graph.value_info[:]  # re-inferred; stale entries (e.g. after FP16 conversion) clash
    inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    out: dict[str, tuple[tuple[int, ...], int]] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        shape = tuple(d.dim_value for d in t.shape.dim)
        if all(s > 0 for s in shape) or shape == ():
            out[vi.name] = (shape, t.elem_type)
    for init in inferred.graph.initializer:
        out[init.name] = (tuple(init.dims), init.data_type)
    return out


def graph_costs(model: Any, dims: dict[str, int], act_bytes: float = 4.0) -> list[OpCost]:
    """Cost of every node of ``model`` (an onnx.ModelProto) with dynamic axes set to ``dims``.

    ``act_bytes``: width of float activations at the precision the graph runs in.
    """
    shapes = _shapes(model, dims)
    inits = {i.name for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    quantized = {  # tensors that are dequantized int8 (read at their stored width)
        n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"
    }

    def numel(name: str) -> int:
        s = shapes.get(name)
        return int(math.prod(s[0])) if s else 0

    def tensor_bytes(name: str) -> float:
        if not name or name not in shapes:
            return 0.0
        n = numel(name)
        if name in inits:
            return n * _elem_bytes(shapes[name][1])
        if name in quantized:
            src = producers[name].input[0]
            width = _elem_bytes(shapes[src][1]) if src in shapes else 1.0
            return n * width
        if shapes[name][1] in (1, 10, 16):  # float, float16, bfloat16 activations
            return n * act_bytes
        return n * _elem_bytes(shapes[name][1])

    def is_weight(name: str) -> bool:
        if name in inits:
            return True
        p = producers.get(name)
        return p is not None and p.op_type == "DequantizeLinear" and p.input[0] in inits

    costs = []
    for node in model.graph.node:
        op = node.op_type
        if op in FUSED:
            costs.append(OpCost(node.name, op, 0.0, 0.0, 0.0, fused=True))
            continue
        out_n = sum(numel(o) for o in node.output)
        flops = _flops(node, shapes, out_n)
        w_bytes = sum(tensor_bytes(i) for i in node.input if is_weight(i))
        a_bytes = sum(tensor_bytes(i) for i in node.input if i and not is_weight(i))
        a_bytes += sum(tensor_bytes(o) for o in node.output)
        int8 = op in GEMM_OPS and any(i in quantized for i in node.input)
        costs.append(
            OpCost(
                node.name,
                op,
                flops,
                a_bytes + w_bytes,
                w_bytes,
                int8=int8,
                elements=out_n,
                rank=len(shapes[node.output[0]][0]) if node.output[0] in shapes else 0,
                act_bytes=act_bytes,
            )
        )
    return costs


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _flops(node: Any, shapes: dict[str, tuple[tuple[int, ...], int]], out_n: int) -> float:
    op = node.op_type

    def shape(i: int) -> tuple[int, ...]:
        if i < len(node.input) and node.input[i] in shapes:
            return shapes[node.input[i]][0]
        return ()

    if op == "Conv":
        w = shape(1)
        if len(w) >= 3:
            return 2.0 * out_n * w[1] * math.prod(w[2:])
    if op == "ConvTranspose":
        x, w = shape(0), shape(1)
        if len(w) >= 3 and x:
            group = int(_attr(node, "group", 1))
            return 2.0 * math.prod(x) * (w[1] * group) / group * math.prod(w[2:])
    if op in ("MatMul", "MatMulInteger"):
        a = shape(0)
        if a:
            return 2.0 * out_n * a[-1]
    if op == "Gemm":
        a = shape(0)
        if a:
            k = a[0] if _attr(node, "transA", 0) else a[-1]
            return 2.0 * out_n * k
    if op == "MatMulNBits":
        return 2.0 * out_n * float(_attr(node, "K", 0))
    return float(NORM_FLOPS.get(op, 1) * out_n)
