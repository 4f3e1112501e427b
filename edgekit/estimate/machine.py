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
