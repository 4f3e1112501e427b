"""Estimated whole-tick latency for a target that is not this machine: a roofline.

Per network call: every op takes ``max(FLOPs / (peak x compute_eff), bytes / (bandwidth x
memory_eff))`` plus a fixed dispatch cost per (non-fused) op; a tick is the sum over the calls
its loop program makes (with the shapes each call really gets: the program is run once on the
host to record them). Host steps (pre/post-processing, scheduler maths) are timed on this host
and added as they are. Every figure this produces is labelled ``estimated`` with this method.

Machines: a target's peak compute and memory bandwidth come from its profile (published figures,
``edgekit.targets``), with per-family efficiency factors and dispatch costs (below, with their
sources). The ``cpu`` target's figures are *measured* on this host (GEMM throughput through
onnxruntime, streaming bandwidth, per-op dispatch), which is how the method
is checked: estimate the host from its own measured limits and compare with the measured tick
(``benchmarks/estimate_vs_measured.py``).
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import TargetNotMeasurableError
from edgekit.estimate.costs import GEMM_OPS, OpCost, graph_costs
from edgekit.loop import Arrays, LoopProgram, TickContext
from edgekit.targets import Target, why_not_measurable

MEASURED = "measured"
ESTIMATED = "estimated"


@dataclass(frozen=True)
class Machine:
    """What the roofline runs against."""

    name: str
    peak: dict[str, float]  # precision -> FLOP/s (or OP/s for int8)
    bandwidth: float  # bytes/s, streaming (weights are streamed once per call)
    kernel_bandwidth: dict[str, float]  # op type -> bytes/s where a kernel streams differently
    op_overhead_s: float  # per weighted op (Conv/MatMul/Gemm): kernel launch / dispatch
    elem_overhead_s: float  # per other non-fused op
    shape_overhead_s: float  # per shape op (Reshape, Squeeze...): 0 where the runtime folds them
    # op type -> [(elements, seconds per op)]: measured size curves of the host's elementwise,
    # activation and normalisation kernels (host only; a roofline elsewhere)
    kernel_curves: dict[str, list[tuple[int, float]]]
    call_overhead_s: float  # per network call (session.run / graph launch)
    compute_eff: float
    memory_eff: float
    source: str
    # onnxruntime's x86 CPU kernels run 2-D convolutions in a blocked (NCHWc) layout and convert
    # activations at the edges of those regions: about one extra copy of each 2-D Conv's output
    conv2d_layout_copy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Per-family factors for targets that are not here. Assumptions, stated as such:
# - Jetson (TensorRT): dense GEMMs reach ~40% of the data-sheet tensor throughput at batch 1 and
#   streaming ~70% of DRAM bandwidth; ~8 us per kernel launch (NVIDIA's published launch
#   latencies are 5-10 us on Orin-class parts), ~50 us per engine enqueue + sync. The 4 MB L2
#   is treated as no cache.
# - Qualcomm HTP: ~30% of the data-sheet INT8 TOPS on these small convolution/transformer
#   graphs, ~60% of LPDDR bandwidth, ~5 us per op in a single QNN graph (no per-op launch from
#   the CPU, but per-op HVX/HMX scheduling), ~100 us per graph execute through FastRPC.
#   INT16 activations run at half the INT8 rate.
FAMILY = {
    "jetson": {
        "compute_eff": 0.4,
        "memory_eff": 0.7,
        "op_overhead_s": 8e-6,
        "call_overhead_s": 5e-5,
    },
    "qualcomm": {
        "compute_eff": 0.3,
        "memory_eff": 0.6,
        "op_overhead_s": 5e-6,
        "call_overhead_s": 1e-4,
    },
}


def target_machine(t: Target) -> Machine:
    """A target from its profile's published figures and its family's factors."""
    if t.family == "cpu":
        if not t.measurable_here:  # another architecture: no published figures to model it
            raise TargetNotMeasurableError(
                f"{why_not_measurable(t)}; there are no published figures to estimate a generic "
                "CPU from: run `edgekit bench` on that CPU"
            )
        return host_machine()
    f = FAMILY[t.family]
    peak: dict[str, float] = {}
    if t.fp16_tflops:
        peak["fp16"] = t.fp16_tflops * 1e12
        peak["fp32"] = t.fp16_tflops * 1e12 / 2  # no FP32 tensor-core path: half rate
    if t.int8_tops:
        peak["int8"] = t.int8_tops * 1e12
        peak["int16"] = t.int8_tops * 1e12 / 2
    elif "fp16" in peak:
        peak["int8"] = peak["fp16"] * 2
    bw = (t.memory_gbs or 0) * 1e9
    return Machine(
        t.name,
        peak,
        bw,
        {},
        f["op_overhead_s"],
        f["op_overhead_s"],
        0.0,  # TensorRT and QNN fold shape ops when they build the engine / graph
        {},
        f["call_overhead_s"],
        f["compute_eff"],
        f["memory_eff"],
        f"{t.source}; efficiency factors: edgekit/estimate/roofline.py FAMILY",
    )


@functools.lru_cache(maxsize=1)
def host_machine(threads: int | None = None) -> Machine:
    """This host, measured: GEMM FLOP/s (FP32 and INT8, onnxruntime at the bench's thread
    count), streaming bandwidth, per-op dispatch cost.

    Weights count at streaming rates even when they fit in L3 (batch-1 MatMuls on L3-resident
    weights ran at 27-42 GB/s here, not at the ~135 GB/s of a cache-resident copy), and Conv and
    MatMul/Gemm use the weight-streaming rate measured for their own kernels.
    """
    from edgekit.runtimes import default_threads

    threads = threads or default_threads()
    fp32 = _gemm_rate("float", threads)
    int8 = _gemm_rate("int8", threads)
    per_op, per_elem, per_call = _op_overhead(threads)
    kernels = _kernel_bandwidth(threads)
    return Machine(
        "cpu",
        {"fp32": fp32, "fp16": fp32, "int8": int8, "int16": int8 / 2},
        _bandwidth(256 << 20),
        kernels,
        per_op,
        per_elem,
        per_elem,
        _kernel_curves(threads),
        per_call,
        1.0,
        1.0,
        f"measured on this host ({threads} onnxruntime threads)",
        conv2d_layout_copy=True,
    )


def _session(model: Any, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _typical_time(fn: Any, reps: int = 15) -> float:
    """Median seconds of ``fn()`` after one warm-up call (the bench reports medians too)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _gemm_rate(kind: str, threads: int, n: int = 1024) -> float:
    from onnx import TensorProto, helper

    if kind == "float":
        node = helper.make_node("MatMul", ["a", "b"], ["y"])
        ins = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
        feeds: dict[str, np.ndarray] = {
            x: np.random.default_rng(0).standard_normal((n, n), np.float32) for x in "ab"
        }
    else:
        node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
        ins = [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [n, n]),
        ]
        out = helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])
        rng = np.random.default_rng(0)
        feeds = {
            "a": rng.integers(0, 255, (n, n), dtype=np.uint8),
            "b": rng.integers(-127, 127, (n, n), dtype=np.int8),
        }
    graph = helper.make_graph([node], "gemm", ins, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = _session(model, threads)
    return 2.0 * n**3 / _typical_time(lambda: sess.run(None, feeds))


def _bandwidth(nbytes: int) -> float:
    """Read + write bytes/s of copying an array of ``nbytes``."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    reps = max(1, (64 << 20) // nbytes)

    def run() -> None:
        for _ in range(reps):
            np.copyto(dst, src)

    return 2.0 * nbytes * reps / _typical_time(run)


def _op_overhead(threads: int, n_ops: int = 64) -> tuple[float, float, float]:
    """(per weighted op, per other op, per call) seconds of dispatch on this host: chains of
    small MatMuls ([8, 128] x [128, 128], the size of a policy's layers) and of Adds on the
    same activations, less one ``session.run`` of a one-node graph (the per-call cost)."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    for i in range(n_ops):
        w = (rng.standard_normal((128, 128)) * 0.05).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"x{i + 1}"]))
    chain = _model(nodes, "x0", f"x{n_ops}", [8, 128], inits)
    # elementwise ops as graphs have them: a per-channel operand broadcast over the activation
    adds = [helper.make_node("Add", [f"x{i}", "b"], [f"x{i + 1}"]) for i in range(n_ops)]
    bias = numpy_helper.from_array(np.ones((8, 1), np.float32), "b")
    elem = _model(adds, "x0", f"x{n_ops}", [8, 128], [bias])
    one = _model([helper.make_node("Identity", ["x0"], ["y"])], "x0", "y", [8, 128], [])
    feeds = {"x0": np.zeros((8, 128), np.float32)}
    s_chain, s_elem, s_one = (_session(m, threads) for m in (chain, elem, one))
    call = _typical_time(lambda: s_one.run(None, feeds), reps=50)
    per_op = (_typical_time(lambda: s_chain.run(None, feeds), reps=20) - call) / n_ops
    per_elem = (_typical_time(lambda: s_elem.run(None, feeds), reps=20) - call) / n_ops
    return max(per_op, 0.0), max(per_elem, 0.0), call


def _kernel_bandwidth(threads: int, n: int = 16) -> dict[str, float]:
    """Weight bytes/s of batch-1 layer chains: Conv1d (256 channels, length 16, kernel 5) and
    MatMul ([1, 512] x [512, 512]), the shapes where those kernels are weight-bound."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for op, x_shape, w_shape in (
        ("Conv", [1, 256, 16], (256, 256, 5)),
        ("MatMul", [1, 512], (512, 512)),
    ):
        nodes, inits = [], []
        for i in range(n):
            w = (rng.standard_normal(w_shape) * 0.02).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            node = helper.make_node(op, [f"x{i}", f"w{i}"], [f"x{i + 1}"])
            if op == "Conv":
                node.attribute.append(helper.make_attribute("pads", [2, 2]))
            nodes.append(node)
        model = _model(nodes, "x0", f"x{n}", x_shape, inits)
        sess = _session(model, threads)
        feeds = {"x0": np.zeros(x_shape, np.float32)}
        t = _typical_time(lambda s=sess, f=feeds: s.run(None, f), reps=10)
        out[op] = n * float(np.prod(w_shape)) * 4 / t
    out["Gemm"] = out["MatMul"]
    out["ConvTranspose"] = out["Conv"]
    return out


# Kernels whose time the host measures as a function of size rather than from peak FLOP/s and
# streaming bandwidth: cheap elementwise ops run from cache well above streaming bandwidth on
# small tensors and pay thread-pool dispatch on large ones; activations (Softplus, Mish...) run
# far below the GEMM FLOP rate; normalisations make several passes. Binary elementwise ops use
# the "Add" curve (one operand broadcast per channel, as graphs have them).
CURVE_SIZES = (1024, 8192, 65536, 524288)
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Clip", "Neg", "Abs", "Max",
               "Min", "Sqrt", "Where", "Cast"}  # fmt: skip
ACTIVATIONS = ("Softplus", "Mish", "Tanh", "Sigmoid", "Erf", "Exp", "Log", "Sin", "Cos")
NORMS = ("Softmax", "LayerNormalization", "InstanceNormalization")


def curve_key(op_type: str) -> str:
    return "Add" if op_type in ELEMENTWISE else op_type


def _kernel_curves(threads: int, n: int = 16) -> dict[str, list[tuple[int, float]]]:
    """Seconds per op of chains of ``n`` ops at each of ``CURVE_SIZES`` elements."""
    from onnx import helper, numpy_helper

    out: dict[str, list[tuple[int, float]]] = {}
    for op in ("Add", *ACTIVATIONS, *NORMS):
        points = []
        for size in CURVE_SIZES:
            channels = 64
            shape = [1, channels, size // channels]
            inits: list[Any] = []
            if op == "Add":
                inits = [numpy_helper.from_array(np.ones((channels, 1), np.float32), "b")]
                nodes = [helper.make_node(op, [f"x{i}", "b"], [f"x{i + 1}"]) for i in range(n)]
            elif op in ("LayerNormalization", "InstanceNormalization"):
                c = shape[-1] if op == "LayerNormalization" else channels
                inits = [numpy_helper.from_array(np.ones(c, np.float32), k) for k in ("s", "b")]
                nodes = [helper.make_node(op, [f"x{i}", "s", "b"], [f"x{i + 1}"]) for i in range(n)]
                if op == "LayerNormalization":
                    for node in nodes:
                        node.attribute.append(helper.make_attribute("axis", -1))
            else:
                nodes = [helper.make_node(op, [f"x{i}"], [f"x{i + 1}"]) for i in range(n)]
            sess = _session(_model(nodes, "x0", f"x{n}", shape, inits), threads)
            feeds = {"x0": np.full(shape, 0.5, np.float32)}
            reps = 9 if size <= 65536 else 5
            t = _typical_time(lambda s=sess, f=feeds: s.run(None, f), reps=reps)
            points.append((size, t / n))
        out[op] = points
    return out


def curve_time(points: list[tuple[int, float]], elements: int) -> float:
    """Seconds at ``elements``: log-log interpolation between measured sizes; the smallest
    size's time below them, its per-element time above them."""
    if elements <= points[0][0]:
        return points[0][1]
    for (n0, t0), (n1, t1) in itertools.pairwise(points):
        if elements <= n1:
            a = np.log(elements / n0) / np.log(n1 / n0)
            return float(np.exp(np.log(t0) + a * (np.log(t1) - np.log(t0))))
    n_last, t_last = points[-1]
    return t_last * elements / n_last


def _model(nodes: list[Any], x: str, y: str, shape: list[int], inits: list[Any]) -> Any:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, shape)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


# --- the estimate ----------------------------------------------------------------------------


@dataclass
class CallEstimate:
    network: str
    calls: int
    ms_per_call: float
    flops: float
    bytes: float
    ops: int
    bound: str  # "compute", "memory" or "overhead": what dominates


@dataclass
class TickEstimate:
    target: str
    precision: str
    network_ms: float
    host_ms: float
    calls: list[CallEstimate] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    method: str = ""

    @property
    def tick_ms(self) -> float:
        return self.network_ms + self.host_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": ESTIMATED,
            "target": self.target,
            "precision": self.precision,
            "tick_ms": self.tick_ms,
            "network_ms": self.network_ms,
            "host_ms": self.host_ms,
            "calls": [asdict(c) for c in self.calls],
            "machine": self.machine,
            "method": self.method,
        }


def op_time(c: OpCost, m: Machine, precision: str) -> tuple[float, str]:
    if c.fused:
        return m.shape_overhead_s, "fused"
    peak = m.peak.get("int8" if c.int8 else precision) or m.peak.get("fp32", 1e9)
    bw = m.kernel_bandwidth.get(c.op_type, m.bandwidth)
    t_c = c.flops / (peak * m.compute_eff)
    t_m = c.bytes / (bw * m.memory_eff)
    curve = m.kernel_curves.get(curve_key(c.op_type))
    if curve:  # measured on this kernel at sizes around this op's (includes its dispatch)
        return curve_time(curve, c.elements), "measured kernel"
    over = m.op_overhead_s if c.op_type in GEMM_OPS else m.elem_overhead_s
    if m.conv2d_layout_copy and c.op_type == "Conv" and c.rank == 4:
        over += 2 * c.elements * c.act_bytes / m.bandwidth  # read + write of the output
    if over >= max(t_c, t_m):
        return max(t_c, t_m) + over, "overhead"
    return max(t_c, t_m) + over, "compute" if t_c >= t_m else "memory"


class _ShapeRecorder:
    """A runtime that runs the host's ORT sessions and records each network's feed shapes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = "shape-recorder"
        self.shapes: dict[str, list[dict[str, tuple[int, ...]]]] = {}

    def run(self, network: str, feeds: Arrays) -> Arrays:
        self.shapes.setdefault(network, []).append({k: v.shape for k, v in feeds.items()})
        return self.inner.run(network, feeds)


def estimate_tick(
    files: dict[str, Path],
    program: LoopProgram,
    machine: Machine,
    precision: str,
    act_bytes: float,
    seed: int = 0,
) -> TickEstimate:
    """Roofline estimate of one whole tick of ``program`` over the ONNX networks ``files``."""
    from edgekit.onnxfile import read_onnx
    from edgekit.runtimes import OrtRuntime

    rec = _ShapeRecorder(OrtRuntime(files, threads=1))
    program.reset(seed)
    obs = program.sample_observation(np.random.default_rng(seed + 1))
    ctx = TickContext(rec)
    program.tick(ctx, obs)
    ctx.clear()
    program.tick(ctx, obs)  # host steps of a warm tick, timed by the program's own stages
    host_ms = sum(_host_ns(ctx).values()) / 1e6
    calls: list[CallEstimate] = []
    total = 0.0
    models = {n: read_onnx(p) for n, p in files.items()}
    for net, feeds in rec.shapes.items():
        # the second tick recorded the same calls as the first: use the first tick's half
        per_tick = feeds[: len(feeds) // 2] if len(feeds) > 1 else feeds
        groups: dict[tuple[Any, ...], int] = {}
        for f in per_tick:
            key = tuple(sorted(f.items()))
            groups[key] = groups.get(key, 0) + 1
        for key, count in groups.items():
            costs = _costs_for(models[net], dict(key), act_bytes)
            times = [op_time(c, machine, precision) for c in costs]
            ms = 1e3 * (sum(t for t, _ in times) + machine.call_overhead_s)
            by: dict[str, float] = {}
            for t, b in times:
                by[b] = by.get(b, 0.0) + t
            bound = max(by, key=lambda k: by[k]) if by else "overhead"
            calls.append(
                CallEstimate(
                    net,
                    count,
                    ms,
                    sum(c.flops for c in costs),
                    sum(c.bytes for c in costs),
                    sum(1 for c in costs if not c.fused),
                    bound,
                )
            )
            total += ms * count
    return TickEstimate(
        machine.name,
        precision,
        total,
        host_ms,
        calls,
        machine.to_dict(),
        "roofline per op: max(FLOPs / (peak x compute_eff), bytes / (bandwidth x memory_eff))"
        " + per-op dispatch, summed over the loop program's calls with their recorded shapes; "
        "host steps timed on this host and added as they are",
    )


def _host_ns(ctx: TickContext) -> dict[str, int]:
    return {k: int(v) for k, v in ctx.stage_ns.items() if k in ctx.host_calls}


def _costs_for(model: Any, shapes: dict[str, tuple[int, ...]], act_bytes: float) -> list[OpCost]:
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        if inp.name in shapes:
            dims = inp.type.tensor_type.shape.dim
            for d, size in zip(dims, shapes[inp.name], strict=False):
                d.ClearField("dim_param")
                d.dim_value = int(size)
    return graph_costs(m, {}, act_bytes)
