"""The machine a roofline estimate runs against: peak compute per precision, bandwidths, dispatch
costs and measured kernel curves (:class:`Machine`).

A target that is not this machine gets one from its profile's published figures
(``edgekit.targets``) and its family's efficiency factors and dispatch costs (the family's
profile class in ``edgekit/targets/``, with their sources); the ``cpu`` target is this host,
measured (:mod:`edgekit.estimate.host`).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import TargetNotMeasurableError
from edgekit.targets import Target, why_not_measurable


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


def target_machine(t: Target) -> Machine:
    """A target from its profile's published figures and its family's factors."""
    f = t.efficiency
    if f is None:  # a CPU: measured here, or (another architecture) not modelled at all
        if not t.measurable_here:  # another architecture: no published figures to model it
            raise TargetNotMeasurableError(
                f"{why_not_measurable(t)}; there are no published figures to estimate a generic "
                "CPU from: run `edgekit bench` on that CPU"
            )
        from edgekit.estimate.host import host_machine

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


# Kernel curves (host only): binary elementwise ops read the "Add" curve (one operand broadcast
# per channel, as graphs have them); other ops read their own curve where one was measured.
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Clip", "Neg", "Abs", "Max",
               "Min", "Sqrt", "Where", "Cast"}  # fmt: skip


def curve_key(op_type: str) -> str:
    return "Add" if op_type in ELEMENTWISE else op_type


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
