"""INT8 static post-training quantization through onnxruntime's QDQ quantizer.

What it fixes on the way (measured on this project's machines, see docs/commands/quantize.md):

* ``quant_pre_process`` first: it folds MatMul + Add into Gemm, which lets onnxruntime fuse
  quantized Gemm kernels.
* The exporter turns GroupNorm into InstanceNormalization nodes that share one constant
  initializer; ``quantize_static`` then fails with "Quantization parameter shared mode is not
  supported for weight yet". Small shared initializers get one copy per consumer.
* Only weighted ops are quantized, listed explicitly (``nodes_to_quantize``): MatMuls between
  two activations (attention scores) stay in float, as do Add/Mul/Softmax/LayerNorm.
* Activation ranges are calibrated once per network and cached, so the mixed-precision search
  re-quantizes with other node sets without re-running calibration.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import progress
from edgekit.errors import ExportError
from edgekit.loop import Arrays
from edgekit.loop.capture import FeedReader
from edgekit.targets.schemes import Scheme

SHARED_COPY_LIMIT = 1 << 16  # bytes: shared initializers up to this size get per-node copies


@dataclass
class PreparedNetwork:
    """A network ready to quantize: pre-processed model, its candidate nodes, its cache."""

    name: str
    path: Path
    candidates: list[str]  # weighted nodes, in graph order
    op_of: dict[str, str]
    cache: Path
    feeds: list[Arrays] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)  # node -> weight elements

    def weight_total(self, nodes: set[str] | None = None) -> int:
        """Weight elements of ``nodes`` (None: every candidate)."""
        return sum(v for k, v in self.weights.items() if nodes is None or k in nodes)


def prepare(
    name: str, fp32_path: Path, workdir: Path, scheme: Scheme, feeds: list[Arrays]
) -> PreparedNetwork:
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = workdir / f"{name}.pre.onnx"
    try:
        with quiet():
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
    except Exception:  # symbolic shape inference fails on some graphs; plain ONNX inference then
        with quiet():
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
    model = onnx.load(str(pre))
    _name_nodes(model)
    unshare_initializers(model)
    onnx.save(model, str(pre))
    candidates, op_of = weighted_nodes(model, scheme.op_types)
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
    inputs = {n.name: n.input[:2] for n in model.graph.node}
    weights = {c: max(sizes.get(i, 0) for i in inputs[c]) for c in candidates}
    return PreparedNetwork(
        name, pre, candidates, op_of, workdir / f"{name}.calib.json", feeds, weights
    )


def weighted_nodes(model: Any, op_types: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Nodes of ``op_types`` that have a weight (an initializer input)."""
    inits = {i.name for i in model.graph.initializer}
    names, ops = [], {}
    for node in model.graph.node:
        if node.op_type in op_types and any(i in inits for i in node.input[:2]):
            names.append(node.name)
            ops[node.name] = node.op_type
    return names, ops


def quantize_network(
    net: PreparedNetwork, out: Path, scheme: Scheme, method: str, keep_float: set[str] | None = None
) -> Path:
    """Write ``out``: the network with its candidate nodes (minus ``keep_float``) in INT8."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8, "uint16": QuantType.QUInt16}
    nodes = [n for n in net.candidates if n not in (keep_float or set())]
    if not nodes:  # nothing to quantize: the float network as it is
        out.write_bytes(net.path.read_bytes())
        return out
    calib = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[method]
    extra: dict[str, Any] = {
        "ActivationSymmetric": scheme.activation_symmetric,
        "WeightSymmetric": scheme.weight_symmetric,
        "CalibPercentile": 99.999,
        "QuantizeBias": scheme.quantize_bias,
    }
    if not scheme.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = list(scheme.op_types)
    calibrating = not net.cache.is_file()  # else the cached ranges: no inference
    try:
        with (
            (
                progress.task(f"calibrating {net.name}", total=len(net.feeds))
                if calibrating
                else contextlib.nullcontext()
            ) as task,
            quiet(),
        ):
            quantize_static(
                str(net.path),
                str(out),
                FeedReader(net.feeds, task.advance if task is not None else None),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(scheme.op_types),
                nodes_to_quantize=nodes,
                per_channel=scheme.per_channel,
                reduce_range=scheme.reduce_range,
                activation_type=qtype[scheme.activations],
                weight_type=qtype[scheme.weights],
                calibrate_method=calib,
                extra_options=extra,
                calibration_cache_path=str(net.cache),
            )
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(
            f"network {net.name!r}: onnxruntime quantize_static failed: {first}"
        ) from e
    strip_output_qdq(out)
    return out


PASSTHROUGH = {"Squeeze", "Unsqueeze", "Reshape", "Flatten", "Transpose", "Identity"}


def strip_output_qdq(path: Path) -> int:
    """Remove Q/DQ pairs that feed graph outputs (directly or through shape-only ops).

    A quantized graph output buys no speed and clips every value outside the calibrated range:
    a reward head whose held-out scores left the calibration range returned one constant.
    """
    import onnx

    model = onnx.load(str(path))
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    readers: dict[str, list[Any]] = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    removed = 0
    for out in list(outputs):
        node = producer.get(out)
        while node is not None and node.op_type in PASSTHROUGH:
            node = producer.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear":
            continue
        dq = node
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or len(readers.get(q.output[0], [])) != 1:
            continue
        x, y = q.input[0], dq.output[0]
        if y in outputs:  # the float tensor takes the output's name
            src = producer.get(x)
            if src is None:
                continue
            src.output[list(src.output).index(x)] = y
            for n in readers.get(x, []):
                n.input[:] = [y if i == x else i for i in n.input]
        else:
            for n in readers.get(y, []):
                n.input[:] = [x if i == y else i for i in n.input]
        g.node.remove(q)
        g.node.remove(dq)
        removed += 1
    if removed:
        onnx.save(model, str(path))
    return removed


def _name_nodes(model: Any) -> None:
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def unshare_initializers(model: Any) -> None:
    """Give every consumer of a small shared initializer its own copy (see module doc)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    users: dict[str, int] = {}
    for node in model.graph.node:
        for j, inp in enumerate(node.input):
            if inp not in inits:
                continue
            users[inp] = users.get(inp, 0) + 1
            t = inits[inp]
            if users[inp] > 1 and numpy_helper.to_array(t).nbytes <= SHARED_COPY_LIMIT:
                copy = numpy_helper.from_array(numpy_helper.to_array(t), f"{inp}__{node.name}_{j}")
                model.graph.initializer.append(copy)
                node.input[j] = copy.name


@contextlib.contextmanager
def quiet() -> Any:
    """onnxruntime's quantizer logs progress at INFO/WARNING for every node."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
