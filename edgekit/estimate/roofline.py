"""Estimated whole-tick latency for a target that is not this machine: a roofline.

Per network call: every op takes ``max(FLOPs / (peak x compute_eff), bytes / (bandwidth x
memory_eff))`` plus a fixed dispatch cost per (non-fused) op; a tick is the sum over the calls
its loop program makes (with the shapes each call really gets: the program is run once on the
host to record them). Host steps (pre/post-processing, scheduler maths) are timed on this host
and added as they are. Every figure this produces is labelled ``estimated`` with this method.

The figures it runs against are a :class:`~edgekit.estimate.machine.Machine`: a target's
published figures with per-family factors (:mod:`edgekit.estimate.machine`), or this host's
measured limits (:mod:`edgekit.estimate.host`), which is how the method is checked: estimate
the host from its own measured limits and compare with the measured tick
(``benchmarks/estimate_vs_measured.py``). Op costs (FLOPs, bytes) come from
:mod:`edgekit.estimate.costs`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.estimate.costs import GEMM_OPS, OpCost, graph_costs
from edgekit.estimate.machine import Machine, curve_key, curve_time
from edgekit.loop import Arrays, LoopProgram, TickContext

MEASURED = "measured"
ESTIMATED = "estimated"


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


class ShapeRecorder:
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
    """Roofline estimate of one whole tick of ``program`` over the ONNX networks ``files``
    (a tick that runs the networks: with an action-chunk queue, a planning tick)."""
    from edgekit.onnxfile import read_onnx
    from edgekit.runtimes import OrtRuntime

    rec = ShapeRecorder(OrtRuntime(files, threads=1))
    program.reset(seed)
    obs = program.sample_observation(np.random.default_rng(seed + 1))
    program.tick(TickContext(rec), obs)  # an episode's first tick runs the networks
    first = {net: list(feeds) for net, feeds in rec.shapes.items()}
    program.reset(seed)  # the same tick again, warm (an action-chunk queue would only pop)
    ctx = TickContext(rec)
    program.tick(ctx, obs)  # host steps of a warm tick, timed by the program's own stages
    host_ms = sum(_host_ns(ctx).values()) / 1e6
    calls: list[CallEstimate] = []
    total = 0.0
    models = {n: read_onnx(p) for n, p in files.items()}
    for net, per_tick in first.items():
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
