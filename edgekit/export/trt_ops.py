"""Can TensorRT's ONNX parser take this graph? Checked here, before any device, against the
TensorRT that the target's JetPack ships (JetPack 6 on Orin: 10.3; JetPack 7 on Thor: 10.13).

What is checked, and where each fact comes from:

* onnx-tensorrt ``docs/operators.md``: at the 10.0-GA/10.1-GA releases ("TensorRT 10.0 supports
  operators in the inclusive range of opset 9 to opset 20") and at 10.15 ("opset 9 to opset 24").
  The ops marked ``N``; ops outside the standard domain (onnxruntime contrib ops such as
  ``MatMulNBits``); and the Restrictions column: zero-point-free Q/DQ, 2D/3D pooling without
  dilation, MaxPool without ``Indices``, training-mode Dropout, only the first
  LayerNormalization output, ``ScatterND`` ``reduction``, TopK (``sorted`` must be 1, ``K`` less
  than 3840), CumSum ``axis`` (an initializer; a build-time constant from 10.8), Reduce* ``axes``
  (an initializer), Resize (coordinate transformation ``half_pixel``, ``pytorch_half_pixel``,
  ``tf_half_pixel_for_nn``, ``asymmetric``, ``align_corners``; modes ``nearest``, ``linear``;
  the four nearest modes; aspect ratio policy ``stretch``; tensor ``scales`` only with iota
  ``axes``; no antialiasing), UINT8 only at the graph boundary, DOUBLE cast down.
* onnx-tensorrt ``docs/Changelog.md``: what arrived when. Blackman/Hamming/Hann windows 10.4,
  STFT 10.5, dynamic CumSum axis 10.8, opset-21 GroupNormalization and opset-18+ ScatterND 10.9
  (10.0's importer refuses any ``reduction`` attribute, even "none" as opset-18 exporters write
  it), ONNX 1.17 (opset 22) from 10.6 and ONNX 1.18 (opset 23) from 10.11, Attention 10.14,
  RMSNormalization / RotaryEmbedding / TensorScatter 10.15. Swish: TensorRT 11.
* Q/DQ scales: TensorRT's IQuantizeLayer/IDequantizeLayer ("the subgraph which terminates with
  the scale tensor must be a build-time constant") and the onnx-tensorrt Q/DQ importer
  (10.1-GA ``QuantDequantLinearHelper``: a scale of more than one value is per-axis weight
  quantization; "Activations-quantization does not support per-axis quantization").

The opset ceilings of 10.9 (22) and 10.13/10.14 (23) follow the ONNX release each parser was
built with (Changelog); only 10.0 (20) and 10.15 (24) are stated in operators.md itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import BadInputError

Version = tuple[int, int]

# "N" in every TensorRT 10 matrix (the ops a robot model might contain)
NEVER = frozenset({
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr",
    "BitwiseXor", "Col2Im", "CenterCropPad", "Compress", "ConcatFromSequence", "ConvInteger",
    "DFT", "Det", "DynamicQuantizeLinear", "ImageDecoder", "MatMulInteger", "MaxRoiPool",
    "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
    "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul",
    "RegexFullMatch", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "SequenceMap", "SoftmaxCrossEntropyLoss",
    "SplitToSequence", "StringConcat", "StringNormalizer", "StringSplit", "TfIdfVectorizer",
    "Unique",
})  # fmt: skip


@dataclass(frozen=True)
class Arrival:
    """An op (from a model opset on, 0: any) that a TensorRT release first parses."""

    op: str
    since: Version
    opset: int = 0


LATER = (
    Arrival("BlackmanWindow", (10, 4)),
    Arrival("HammingWindow", (10, 4)),
    Arrival("HannWindow", (10, 4)),
    Arrival("STFT", (10, 5)),
    Arrival("GroupNormalization", (10, 9), opset=21),
    Arrival("Attention", (10, 14)),
    Arrival("RMSNormalization", (10, 15)),
    Arrival("RotaryEmbedding", (10, 15)),
    Arrival("TensorScatter", (10, 15)),
    Arrival("Swish", (11, 0)),
)


@dataclass(frozen=True)
class TrtTable:
    """What one TensorRT release's ONNX parser takes (used for it and the releases up to the
    next table)."""

    version: Version
    opsets: tuple[int, int]
    cite: str
    cumsum_axis_dynamic: bool = False  # 10.8: axis a build-time constant, not an initializer
    scatternd_reduction_none: bool = False  # 10.9: reduction="none" accepted

    @property
    def unsupported(self) -> frozenset[str]:
        return NEVER | {a.op for a in LATER if a.since > self.version and not a.opset}

    @property
    def later(self) -> tuple[Arrival, ...]:
        return tuple(a for a in LATER if a.since > self.version)


_DOCS = "onnx-tensorrt docs/operators.md"
_LOG = "onnx-tensorrt docs/Changelog.md"
# Every arrival within 10.x has its own table, so the nearest table at or below knows it.
TABLES: dict[Version, TrtTable] = {
    t.version: t
    for t in (
        TrtTable((10, 0), (9, 20), f"{_DOCS} (release 10.0-GA/10.1-GA)"),
        TrtTable((10, 4), (9, 20), f"{_DOCS} (10.0-GA) + {_LOG} 10.4"),
        TrtTable((10, 5), (9, 20), f"{_DOCS} (10.0-GA) + {_LOG} 10.5"),
        TrtTable((10, 8), (9, 20), f"{_DOCS} (10.0-GA) + {_LOG} 10.8", True),
        TrtTable((10, 9), (9, 22), f"{_DOCS} (10.0-GA) + {_LOG} 10.9", True, True),
        TrtTable((10, 13), (9, 23), f"{_DOCS} (10.0-GA) + {_LOG} 10.11-10.13", True, True),
        TrtTable((10, 14), (9, 23), f"{_DOCS} (10.0-GA) + {_LOG} 10.14", True, True),
        TrtTable((10, 15), (9, 24), f"{_DOCS} (release 10.15-GA)", True, True),
    )
}

RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric",
                "align_corners"}  # fmt: skip
RESIZE_MODES = {"nearest", "linear"}
RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
TOPK_MAX_K = 3840  # "K input must be less than 3840"
REDUCE_OPS = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
              "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"}  # fmt: skip


@dataclass(frozen=True)
class Offence:
    node: str
    op_type: str
    why: str

    def __str__(self) -> str:
        return f"{self.node or '(unnamed)'} ({self.op_type}): {self.why}"


def parse_version(tensorrt: str) -> Version:
    """``"10.3"`` or ``"10.13.3"`` -> (10, 3); a major without tables is a BadInputError."""
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)*", str(tensorrt).strip())
    if m is None:
        raise BadInputError(f"TensorRT version {tensorrt!r}: expected MAJOR.MINOR, e.g. 10.3")
    v = (int(m[1]), int(m[2]))
    if v[0] not in {k[0] for k in TABLES} or v < min(TABLES):
        lo, hi = min(TABLES), max(TABLES)
        raise BadInputError(
            f"TensorRT {tensorrt}: no op-support table for that release "
            f"(edgekit checks TensorRT {lo[0]}.{lo[1]} to {hi[0]}.x)"
        )
    return v


def table(tensorrt: str) -> TrtTable:
    """The nearest table at or below this TensorRT version."""
    v = parse_version(tensorrt)
    return TABLES[max(k for k in TABLES if k <= v)]


def source(tensorrt: str) -> str:
    """Which table a check for this TensorRT version follows, for reports."""
    t, v = table(tensorrt), _label(parse_version(tensorrt))
    lo, hi = t.opsets
    return f"{t.cite}: TensorRT {_label(t.version)} table for {v} (opset {lo} to {hi})"


def _label(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


class _Graph:
    """Which tensors are initializers (or Constant outputs), which fold to build-time
    constants, and their values and sizes where known."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        g = model.graph
        self.values: dict[str, Any] = {i.name: i for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output:
                t = _attr(n, "value", None)
                if t is None:  # value_int(s)/value_float(s)
                    v = next((_attr(n, k, None) for k in ("value_int", "value_ints",
                              "value_float", "value_floats") if _attr(n, k, None) is not None),
                             None)  # fmt: skip
                    t = numpy_helper.from_array(np.asarray(v)) if v is not None else None
                if t is not None:
                    self.values[n.output[0]] = t
        self.consts = set(self.values)  # what the parser's docs call initializers
        self.folded = set(self.consts)  # build-time constants: computed from those alone
        for n in g.node:
            ins = [i for i in n.input if i]
            if ins and all(i in self.folded for i in ins) and not n.op_type.startswith("Random"):
                self.folded.update(o for o in n.output if o)
        self.shapes = {
            vi.name: [d.dim_value if d.HasField("dim_value") else None
                      for d in vi.type.tensor_type.shape.dim]
            for vi in [*g.value_info, *g.input, *g.output] if vi.type.tensor_type.HasField("shape")
        }  # fmt: skip

    def value(self, name: str) -> Any:
        from onnx import numpy_helper

        t = self.values.get(name)
        return None if t is None else numpy_helper.to_array(t)

    def size(self, name: str) -> int | None:
        t = self.values.get(name)
        dims = list(t.dims) if t is not None else self.shapes.get(name)
        if dims is None or any(d is None for d in dims):
            return None
        return int(np.prod([int(d) for d in dims if d is not None], dtype=np.int64))


def check(model: Any, tensorrt: str = "10.3") -> list[Offence]:
    """Every node this TensorRT's ONNX parser would reject, with the reason."""
    import onnx

    t = table(tensorrt)
    ships = _label(parse_version(tensorrt))
    jetpack = f"this target's JetPack ships {ships}"
    g = _Graph(model)
    out: list[Offence] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    lo, hi = t.opsets
    if not lo <= opset <= hi:
        out.append(Offence("(model)", "opset", f"opset {opset} outside {lo} to {hi}, what "
                           f"TensorRT {ships}'s ONNX parser takes"))  # fmt: skip
    boundary = {v.name for v in [*model.graph.input, *model.graph.output]}
    used = {i for n in model.graph.node for i in n.input}
    for node in model.graph.node:
        op, name = node.op_type, node.name

        def bad(why: str, op: str = op, name: str = name) -> None:
            out.append(Offence(name, op, why))

        def needs(since: Version, form: str = "", op: str = op) -> None:
            bad(f"{op}{form} needs TensorRT >= {_label(since)}; {jetpack}")

        if node.domain not in ("", "ai.onnx"):
            bad(f"custom-domain op ({node.domain}); TensorRT parses standard ONNX ops only")
            continue
        if op in NEVER:
            bad("not supported by TensorRT's ONNX parser")
            continue
        late = next((a for a in t.later if a.op == op and opset >= a.opset), None)
        if late is not None:
            needs(late.since, f" (opset {opset})" if late.opset else "")
            continue
        if op in ("QuantizeLinear", "DequantizeLinear"):
            _check_qdq(node, g, bad)
        if op in ("MaxPool", "AveragePool"):
            k = _attr(node, "kernel_shape", [])
            if len(k) not in (2, 3):
                bad(f"{len(k)}D pooling; TensorRT pools in 2D or 3D only")
            if any(d != 1 for d in _attr(node, "dilations", [])):
                bad("pooling dilations must be all ones")
            if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
                bad("the Indices output is unsupported")
        if op == "Resize":
            _check_resize(node, g, bad)
        if op == "Dropout" and len(node.input) > 2 and node.input[2]:
            v = g.value(node.input[2])
            if v is None or bool(v):
                bad("training_mode must be an initializer that is False")
        if op == "LayerNormalization" and any(o and o in used for o in node.output[1:]):
            bad("only the first output (Y) is supported")
        if op == "ScatterND":
            reduction = _attr(node, "reduction", None)
            if reduction not in (None, "none"):
                bad(f"reduction {reduction!r} unsupported (only none)")
            elif reduction is not None and not t.scatternd_reduction_none:
                needs((10, 9), " with a reduction attribute (as opset-18 exporters write it)")
        if op == "TopK":
            if not _attr(node, "sorted", 1):
                bad("sorted must be 1")
            k = g.value(node.input[1]) if len(node.input) > 1 else _attr(node, "k", None)
            if k is not None and np.size(k) and int(np.max(k)) >= TOPK_MAX_K:
                bad(f"K = {int(np.max(k))}; K must be less than {TOPK_MAX_K}")
        if op == "CumSum" and len(node.input) > 1:
            if not t.cumsum_axis_dynamic and node.input[1] not in g.consts:
                bad(f"axis must be an initializer (computed: TensorRT >= 10.8; {jetpack})")
            elif node.input[1] not in g.folded:
                bad("axis must be a build-time constant")
        axes = node.input[1] if op in REDUCE_OPS and len(node.input) > 1 else ""
        if axes and axes not in g.consts:
            bad("axes must be an initializer")
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        et = vi.type.tensor_type.elem_type
        if et == onnx.TensorProto.UINT8 and vi.name not in boundary:
            out.append(Offence(vi.name, "tensor", "UINT8 only at network inputs/outputs"))
        if et == onnx.TensorProto.DOUBLE:
            out.append(Offence(vi.name, "tensor", "DOUBLE is cast to FLOAT by TensorRT"))
    return out


def _check_qdq(node: Any, g: _Graph, bad: Any) -> None:
    import onnx

    zp = node.input[2] if len(node.input) > 2 else ""
    v = g.value(zp) if zp else None
    if v is not None and np.any(v != 0):
        bad("zero point must be 0 (TensorRT quantization is symmetric)")
    if zp in g.values and g.values[zp].data_type == onnx.TensorProto.UINT8:
        bad("uint8 quantization; TensorRT takes int8 (signed, symmetric) Q/DQ")
    x = node.input[0]
    if (
        node.op_type == "DequantizeLinear"
        and x in g.values
        and g.values[x].data_type in (onnx.TensorProto.INT32, onnx.TensorProto.UINT32)
    ):
        bad("int32 input (a quantized bias); TensorRT dequantizes int8/fp8/int4 only: keep "
            "biases float")  # fmt: skip
    scale = node.input[1] if len(node.input) > 1 else ""
    if scale not in g.folded:
        bad("scale must be a build-time constant (an initializer or Constant)")
    elif (g.size(scale) or 1) > 1 and node.input[0] not in g.folded:
        bad("per-axis scale on an activation; TensorRT quantizes activations per-tensor "
            "(per-axis only for constant weights)")  # fmt: skip


def _check_resize(node: Any, g: _Graph, bad: Any) -> None:
    coord = _attr(node, "coordinate_transformation_mode", "half_pixel")
    mode = _attr(node, "mode", "nearest")
    nearest = _attr(node, "nearest_mode", "round_prefer_floor")
    policy = _attr(node, "keep_aspect_ratio_policy", "stretch")
    if coord not in RESIZE_COORD:
        bad(f"coordinate_transformation_mode {coord!r} unsupported")
    if mode not in RESIZE_MODES:
        bad(f"mode {mode!r} unsupported (nearest, linear)")
    if mode == "nearest" and nearest not in RESIZE_NEAREST:
        bad(f"nearest_mode {nearest!r} unsupported")
    if policy != "stretch":
        bad(f"keep_aspect_ratio_policy {policy!r} unsupported (stretch only)")
    if _attr(node, "antialias", 0):
        bad("antialiasing unsupported")
    axes = list(_attr(node, "axes", []))
    scales = node.input[2] if len(node.input) > 2 else ""
    rank = len(g.shapes.get(node.input[0], axes))
    if axes and scales and scales not in g.consts and axes != list(range(rank)):
        bad(f"axes {axes} with a tensor scales input; axes must be 0..rank-1 in order")
