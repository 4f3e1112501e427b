"""This host's limits, measured through onnxruntime (the ``cpu`` target's :class:`Machine`):
GEMM throughput per precision, streaming bandwidth, per-kernel weight-streaming rates, per-op and
per-call dispatch, and size curves of elementwise, activation and normalisation kernels.

Estimating the host from its own measured limits and comparing with its measured tick is how
the roofline method is checked (``benchmarks/estimate_vs_measured.py``).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from edgekit.errors import TargetNotMeasurableError
from edgekit.estimate.machine import Machine
from edgekit.targets import Target, why_not_measurable


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
# far below the GEMM FLOP rate; normalisations make several passes.
CURVE_SIZES = (1024, 8192, 65536, 524288)
ACTIVATIONS = ("Softplus", "Mish", "Tanh", "Sigmoid", "Erf", "Exp", "Log", "Sin", "Cos")
NORMS = ("Softmax", "LayerNormalization", "InstanceNormalization")


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


def target_machine(t: Target) -> Machine:
    """A target from its profile's published figures and its family's factors."""
    f = t.efficiency
    if f is None:  # a CPU: measured here, or (another architecture) not modelled at all
        if not t.measurable_here:  # another architecture: no published figures to model it
            raise TargetNotMeasurableError(
                f"{why_not_measurable(t)}; there are no published figures to estimate a generic "
                "CPU from: run `edgekit bench` on that CPU"
            )

        return host_machine()
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
        f"{t.source}; efficiency factors: edgekit/targets/{t.family}.py",
    )
