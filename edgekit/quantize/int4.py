"""INT4 weight-only quantization of an ONNX model's MatMul weights (onnxruntime's tool).

Two output formats:

* ``"matmulnbits"``: ``com.microsoft::MatMulNBits``, onnxruntime's CPU kernel. ``accuracy_level=4``
  computes in int8 (without it the kernel dequantizes to FP32 first, which is slower).
* ``"qdq"``: blocked int4 ``DequantizeLinear`` (opset 21, ``block_size`` on axis 0) feeding a plain
  ``MatMul``: the explicit form TensorRT wants (symmetric only: TensorRT takes zero points of 0).
  onnxruntime CPU runs it too; its optimizer may fuse DQ+MatMul into MatMulNBits (session option
  ``session.qdq_matmulnbits_accuracy_level``), so check fidelity on the optimized session.

onnxruntime's tool only touches MatMul: ``nn.Linear`` on a 2-D input exports as ``Gemm`` and would
silently stay FP32, so :func:`gemm_to_matmul` rewrites those first. Conv weights stay FP32
(onnxruntime has no low-bit Conv kernel on CPU) and are reported as skipped. A K that is not a
multiple of ``block_size`` is fine (MatMulNBits pads K; blocked DQ has a shorter last block), but a
weight whose int4 form would not be smaller than FP32 (tiny K, padding) is left FP32.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import BadInputError, ExportError, ModelLoadError
from edgekit.onnxfile import onnx_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    import onnx

FORMATS = ("matmulnbits", "qdq")
_WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose", "Gather")
# onnx.TensorProto data types: bytes per element of the float types, and the 4-bit types
_FLOAT_BYTES = {1: 4, 10: 2, 11: 8, 16: 2}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
_INT4 = (21, 22)  # UINT4, INT4


@dataclass
class Int4Stats:
    """What :func:`quantize_int4` did. Sizes in bytes; params are weight elements."""

    fmt: str
    block_size: int
    symmetric: bool
    accuracy_level: int | None  # MatMulNBits attribute; None for qdq (the runtime decides)
    matmuls_quantized: int = 0
    gemms_rewritten: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"node", "op", "reason"}
    fp32_bytes: int = 0  # input file (+ its external data)
    int4_bytes: int = 0  # output file (+ its external data)
    weight_params_int4: int = 0
    weight_params_fp32: int = 0  # float initializers left as they were (biases, norms, Conv...)
    bits_per_weight: float = 0.0  # all stored weight bits (scales, zero points, padding) / params

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph (If/Loop/Scan bodies) under it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g.node:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    return (node for g in _graphs(graph) for node in g.node)


def gemm_to_matmul(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Rewrite each top-level ``Gemm`` whose B is an initializer into ``MatMul`` (+ ``Add``).

    ``Y = alpha * A' @ B' + beta * C`` becomes ``MatMul(A', alpha * B')`` (B transposed and scaled
    offline, ``A'`` through a ``Transpose`` node when ``transA``) then ``Add(., beta * C)`` when C
    is given. Gemm takes only 2-D inputs and MatMul on 2-D inputs gives the same (M, N), so the
    rewrite is exact up to float rounding of the folded alpha/beta. Returns a new model (the input
    is not modified) and the number of Gemms rewritten; the others are left as they were.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer if t.data_type in _FLOAT_BYTES}
    for i in g.input:  # IR < 4: an input may override an initializer
        inits.pop(i.name, None)
    names = {x for n in _all_nodes(g) for x in (n.name, *n.input, *n.output)}
    names |= {t.name for t in g.initializer} | {
        v.name for v in (*g.input, *g.output, *g.value_info)
    }

    def fresh(base: str, array: Any = None) -> str:
        """A name not used anywhere in the graph; with ``array``, also a new initializer."""
        name, i = base, 0
        while name in names:
            i += 1
            name = f"{base}_{i}"
        names.add(name)
        if array is not None:
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    nodes: list[onnx.NodeProto] = []
    replaced: set[str] = set()  # B and C of rewritten Gemms: dropped below if no longer used
    folded: dict[tuple[str, float, int], str] = {}  # one transposed copy of a B shared by Gemms
    for node in g.node:
        b = node.input[1] if node.op_type == "Gemm" and node.domain in ("", "ai.onnx") else ""
        if b not in inits:
            nodes.append(node)
            continue
        att = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        alpha, beta = float(att.get("alpha", 1.0)), float(att.get("beta", 1.0))
        weight = numpy_helper.to_array(inits[b])
        replaced.update(node.input[1:])
        if att.get("transB", 0) or alpha != 1.0:
            w = weight.T if att.get("transB", 0) else weight
            key = (b, alpha, att.get("transB", 0))
            if key not in folded:
                folded[key] = fresh(f"{b}_kn", w * weight.dtype.type(alpha))
            b = folded[key]
        a, y, base = node.input[0], node.output[0], node.name or fresh("Gemm")
        if att.get("transA", 0):
            a_t = fresh(f"{a}_T")
            nodes.append(helper.make_node("Transpose", [a], [a_t], fresh(f"{base}_A"), perm=[1, 0]))
            a = a_t
        c = node.input[2] if len(node.input) > 2 and beta != 0.0 else ""
        mm_out = fresh(f"{y}_matmul") if c else y
        nodes.append(helper.make_node("MatMul", [a, b], [mm_out], base))
        if c and beta != 1.0 and c in inits:
            bias = numpy_helper.to_array(inits[c])
            c = fresh(f"{c}_beta", bias * bias.dtype.type(beta))
        elif c and beta != 1.0:
            k = fresh(f"{base}_beta", np.array(beta, dtype=weight.dtype))
            c_scaled = fresh(f"{c}_beta")
            nodes.append(helper.make_node("Mul", [c, k], [c_scaled], fresh(f"{base}_mul")))
            c = c_scaled
        if c:
            nodes.append(helper.make_node("Add", [mm_out, c], [y], fresh(f"{base}_bias")))
    count = sum(n.op_type == "Gemm" for n in g.node) - sum(n.op_type == "Gemm" for n in nodes)
    del g.node[:]
    g.node.extend(nodes)
    used = {x for n in _all_nodes(g) for x in n.input} | {o.name for o in g.output}
    kept = [t for t in g.initializer if t.name not in replaced or t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return out, count


def _plan(
    model: onnx.ModelProto, block_size: int, symmetric: bool, fmt: str, exclude: set[str]
) -> tuple[list[str], list[dict[str, str]]]:
    """MatMuls to keep away from onnxruntime's tool, and every weight op left FP32 with why."""
    inits = {t.name: t for g in _graphs(model.graph) for t in g.initializer}
    inits = {k: t for k, t in inits.items() if t.data_type in _FLOAT_BYTES}
    for i in model.graph.input:  # IR < 4: an input may override an initializer
        inits.pop(i.name, None)
    excluded: list[str] = []
    skipped: list[dict[str, str]] = []
    for node in _all_nodes(model.graph):
        if node.op_type not in _WEIGHT_OPS or node.domain not in ("", "ai.onnx"):
            continue
        w = inits.get(node.input[0 if node.op_type == "Gather" else 1])
        if w is None and node.op_type in ("Gather", "Conv", "ConvTranspose"):
            continue  # no float weight here (e.g. Gather on a shape)
        if node.name in exclude:
            why = "in nodes_to_exclude"
        elif w is None:
            why = "no constant weight (activation x activation): computed in float"
        elif node.op_type in ("Conv", "ConvTranspose"):
            why = "Conv: onnxruntime has no low-bit Conv kernel on CPU; weight left FP32"
        elif node.op_type == "Gather":
            why = "Gather (embedding table): only MatMul weights are quantized; left FP32"
        elif node.op_type == "Gemm":
            why = "Gemm inside a subgraph: not rewritten to MatMul; left FP32"
        elif len(w.dims) < 2 or any(d != 1 for d in w.dims[:-2]):
            why = f"weight shape {list(w.dims)} is not 2-D: onnxruntime's tool skips it"
        else:
            k, n = w.dims[-2], w.dims[-1]
            fp_bytes = k * n * _FLOAT_BYTES[w.data_type]
            if _int4_bytes(k, n, block_size, symmetric, fmt) >= fp_bytes:
                why = f"K={k} x N={n}: int4 form (block {block_size}) not smaller than float"
            else:
                continue
        skipped.append({"node": node.name, "op": node.op_type, "reason": why})
        if node.op_type == "MatMul":
            excluded.append(node.name)
    return excluded, skipped


def _int4_bytes(k: int, n: int, block_size: int, symmetric: bool, fmt: str) -> int:
    """Bytes onnxruntime will store for a K x N weight (packed data, fp32 scales, zero points)."""
    blocks = math.ceil(k / block_size)
    if fmt == "matmulnbits":  # K padded to whole blocks; zero points packed per column
        return n * blocks * (block_size // 2 + 4) + (0 if symmetric else n * math.ceil(blocks / 2))
    return math.ceil(k * n / 2) + blocks * n * 4 + (0 if symmetric else math.ceil(blocks * n / 2))


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give unnamed nodes unique names (nodes_to_exclude and the report go by name)."""
    taken = {n.name for n in _all_nodes(graph)}
    for i, node in enumerate(_all_nodes(graph)):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _dedupe_nodes(graph: onnx.GraphProto) -> None:
    """Drop nodes repeating an earlier one (bar the name): the QDQ tool emits one DequantizeLinear
    per user of a shared weight, all writing the same output (not valid SSA)."""
    seen: set[tuple[Any, ...]] = set()
    keep = []
    for n in graph.node:
        key = (*n.input, "->", *n.output, *map(str, n.attribute))
        if n.op_type != "DequantizeLinear" or key not in seen:
            seen.add(key)
            keep.append(n)
    del graph.node[:]
    graph.node.extend(keep)


def _weight_stats(model: onnx.ModelProto) -> tuple[int, int, int, int]:
    """(quantized MatMuls, int4 params, float params, stored weight bits) of a quantized model."""
    from onnx.helper import tensor_dtype_to_np_dtype

    inits = {t.name: t for g in _graphs(model.graph) for t in g.initializer}
    quant: set[str] = set()
    dq_outputs: set[str] = set()
    n_nodes = params_int4 = 0
    for node in _all_nodes(model.graph):
        if node.op_type == "MatMulNBits" and node.domain == "com.microsoft":
            att = {a.name: a.i for a in node.attribute}
            params, data, extra = att["K"] * att["N"], node.input[1], node.input[2:4]
            n_nodes += 1
        elif node.op_type == "DequantizeLinear" and node.input[0] in inits:
            if inits[node.input[0]].data_type not in _INT4:
                continue
            params, data, extra = (
                math.prod(inits[node.input[0]].dims),
                node.input[0],
                node.input[1:3],
            )
            dq_outputs.add(node.output[0])
        else:
            n_nodes += node.op_type == "MatMul" and node.input[1] in dq_outputs
            continue
        params_int4 += 0 if data in quant else params  # a shared weight counts once
        quant.update([data, *extra])
    bits = params_fp = 0
    for name, t in inits.items():
        count = math.prod(t.dims)
        if name in quant:
            item_bits = (
                4 if t.data_type in _INT4 else 8 * tensor_dtype_to_np_dtype(t.data_type).itemsize
            )
            bits += item_bits * count
        elif t.data_type in _FLOAT_BYTES and t.dims:  # rank-0 constants are not weights
            params_fp += count
            bits += 8 * _FLOAT_BYTES[t.data_type] * count
    return n_nodes, params_int4, params_fp, bits


def quantize_int4(
    fp32_path: Path,
    out_path: Path,
    *,
    block_size: int = 32,
    symmetric: bool = True,
    accuracy_level: int | None = 4,
    fmt: str = "matmulnbits",
    nodes_to_exclude: list[str] | None = None,
) -> Int4Stats:
    """Quantize the MatMul weights of an FP32 ONNX file to int4 and save it as one file.

    Gemms with a constant B are rewritten to MatMul first (:func:`gemm_to_matmul`); everything not
    quantized (Conv, activation x activation MatMuls, weights whose int4 form would not be smaller,
    ``nodes_to_exclude``) is listed in ``Int4Stats.skipped`` with the reason. ``fmt="qdq"`` raises
    the opset to 21 (onnx version converter) for int4 ``DequantizeLinear``; ``accuracy_level`` is
    written into MatMulNBits only (``fmt="matmulnbits"``; 4 = int8 compute).
    """
    import onnx

    if fmt not in FORMATS:
        raise BadInputError(f"int4 format {fmt!r}: use one of {', '.join(FORMATS)}")
    if block_size < 16 or block_size & (block_size - 1):
        raise BadInputError(f"int4 block_size {block_size}: use a power of two >= 16 (32, 64, 128)")
    if accuracy_level not in (None, 0, 1, 2, 3, 4):
        raise BadInputError(f"int4 accuracy_level {accuracy_level}: use 0-4 or None (4 = int8)")
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    try:
        model = onnx.load(str(fp32_path))
    except Exception as e:
        raise ModelLoadError(f"{fp32_path}: cannot load ONNX model ({e}); check the file") from e
    fp32_bytes = onnx_bytes(fp32_path)
    model, rewritten = gemm_to_matmul(model)
    _name_nodes(model.graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if fmt == "qdq" and opset < 21:
        from onnx import version_converter

        meta = {n.name: list(n.metadata_props) for n in model.graph.node}
        try:
            model = version_converter.convert_version(model, 21)
        except Exception as e:
            raise ExportError(f"{fp32_path}: cannot convert to opset 21 for int4 QDQ ({e})") from e
        for node in model.graph.node:  # the converter drops the exporter's node metadata
            if not node.metadata_props:
                node.metadata_props.extend(meta.get(node.name, []))
    excluded, skipped = _plan(model, block_size, symmetric, fmt, set(nodes_to_exclude or ()))

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    root.setLevel(level)  # importing it runs logging.basicConfig(level=INFO): undo that
    root.handlers[:] = handlers
    log = logging.getLogger(MatMulNBitsQuantizer.__module__)
    log_level = log.level
    log.setLevel(logging.WARNING)  # it logs every node at INFO
    try:
        quantizer = MatMulNBitsQuantizer(
            model,  # the default RTN algorithm; edits ``model`` (our copy) in place
            bits=4,
            block_size=block_size,
            is_symmetric=symmetric,
            accuracy_level=accuracy_level,
            nodes_to_exclude=excluded,
            quant_format=QuantFormat.QOperator if fmt == "matmulnbits" else QuantFormat.QDQ,
        )
        quantizer.process()
    finally:
        log.setLevel(log_level)
    quantized: onnx.ModelProto = quantizer.model.model
    _dedupe_nodes(quantized.graph)
    try:
        onnx.checker.check_model(quantized)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{fp32_path}: int4 model fails onnx.checker: {e}") from e
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    try:
        onnx.save(quantized, str(tmp))
        os.replace(tmp, out_path)
    except ValueError as e:  # protobuf's 2 GiB limit for a single file
        raise ExportError(f"{out_path}: int4 model too large for one file ({e})") from e
    finally:
        tmp.unlink(missing_ok=True)

    n_nodes, params_int4, params_fp, bits = _weight_stats(quantized)
    total = params_int4 + params_fp
    return Int4Stats(
        fmt=fmt,
        block_size=block_size,
        symmetric=symmetric,
        accuracy_level=accuracy_level if fmt == "matmulnbits" else None,
        matmuls_quantized=n_nodes,
        gemms_rewritten=rewritten,
        skipped=skipped,
        fp32_bytes=fp32_bytes,
        int4_bytes=onnx_bytes(out_path),
        weight_params_int4=params_int4,
        weight_params_fp32=params_fp,
        bits_per_weight=round(bits / total, 4) if total else 0.0,
    )
