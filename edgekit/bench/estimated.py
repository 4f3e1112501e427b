"""`edgekit bench --target T` for a target that is not this machine: an *estimated* tick.

The report has the shape of a measured one where it can (model, target, loop, budget,
verdict) and says ``"kind": "estimated"`` with the method wherever a number appears; there are
no percentiles, because nothing was timed. ``require_measured=True`` turns an estimate into a
failure (exit 1) for pipelines that must not ship on estimates.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.bench.report import budget_warnings, model_info, write_report
from edgekit.errors import BadInputError, GateFailed
from edgekit.gates import Gate, Gated, upper_bound
from edgekit.loader import Source, TorchSource
from edgekit.targets import Target

ACT_BYTES = {"fp32": 4.0, "fp16": 2.0, "int16": 2.0, "int8": 1.0}


class EstimateRefused(GateFailed):
    """``--require-measured`` and the target can only be estimated here."""


@dataclass
class EstimateReport(Gated):
    model: dict[str, Any]
    target: Target
    estimate: Any  # edgekit.estimate.TickEstimate
    hz: float
    budget_ms: float
    budget_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def tick_ms(self) -> float:
        return float(self.estimate.tick_ms)

    @property
    def gates(self) -> list[Gate]:
        name, value = self.target.name, self.tick_ms
        return [
            upper_bound(
                "bench", "latency", "estimate", value, self.budget_ms, self.estimate.method,
                unit="ms", evidence="estimated", target=name,
                name=f"{name}: tick <= {self.budget_ms:g} ms (estimated)",
                message=f"budget missed (ESTIMATED): {value:.2f} ms > {self.budget_ms:.2f} ms "
                f"on {name}",
            )
        ]  # fmt: skip

    @property
    def warnings(self) -> list[str]:
        return budget_warnings(self.budget_ms, self.hz)

    def to_dict(self) -> dict[str, Any]:
        from edgekit.reports.envelope import envelope

        body = {
            "report": "edgekit.bench",
            "model": self.model,
            "target": self.target.to_dict(),
            "measurement": {
                "kind": "estimated",
                "method": self.estimate.method,
                "why": f"target {self.target.name!r} is not this machine",
            },
            "loop": {"hz": self.hz, "period_ms": 1000.0 / self.hz},
            "budget": {
                "ms": self.budget_ms,
                "gate": "estimated tick",
                "source": self.budget_source,
            },
            "estimate": self.estimate.to_dict(),
            "notes": self.notes,
        }
        return envelope("bench", body, self.gates, warnings=self.warnings)

    def write_json(self, path: str | Path) -> None:

        write_report(path, self.to_dict())


def precision_for(tgt: Target, precision: str | None, quantized: bool) -> str:
    """The precision the estimate assumes: given, else the target family's usual one; a
    precision the target cannot run is refused."""
    chosen = precision or ("int8" if quantized else tgt.estimate_precision)
    if chosen not in ACT_BYTES:
        raise BadInputError(f"--precision {chosen!r}: expected one of {', '.join(ACT_BYTES)}")
    if chosen not in tgt.precisions:
        raise BadInputError(
            f"--precision {chosen}: {tgt.name} ({tgt.accelerator}) runs "
            f"{', '.join(tgt.precisions)}, not {chosen}"
        )
    return chosen


def estimate_bench(
    source: Source,
    tgt: Target,
    program: Any,
    rate: float,
    budget: float,
    budget_source: str,
    precision: str | None,
    seed: int = 0,
) -> EstimateReport:
    from edgekit.estimate import estimate_tick, target_machine

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-estimate-") as work:
        from edgekit.export.onnx import ensure_onnx

        if isinstance(source, TorchSource):
            notes.append("exported to ONNX on the fly to count its ops")
        files = ensure_onnx(source, Path(work) / "onnx")
        quantized = _has_qdq(files)
        prec = precision_for(tgt, precision, quantized)
        est = estimate_tick(files, program, target_machine(tgt), prec, ACT_BYTES[prec], seed)
    contexts = getattr(source, "origin", {}).get("qnn_contexts")
    if contexts and tgt.family == "qualcomm":
        notes.append(_simulator_check(contexts, tgt, program, seed))
    if tgt.family != "cpu":
        notes.append(
            "host steps (pre/post-processing, scheduler maths) are timed on this host's CPU and "
            f"added as they are; {tgt.device}'s CPU may be slower"
        )
    if quantized:
        notes.append("weighted ops between Q/DQ pairs are costed at INT8")

    return EstimateReport(
        model=model_info(source, program),
        target=tgt,
        estimate=est,
        hz=rate,
        budget_ms=budget,
        budget_source=budget_source,
        notes=notes,
    )


def _has_qdq(files: dict[str, Path]) -> bool:
    import onnx

    for path in files.values():
        model = onnx.load(str(path), load_external_data=False)
        if any(n.op_type == "DequantizeLinear" for n in model.graph.node):
            return True
    return False


def _simulator_check(contexts: dict[str, str], tgt: Target, program: Any, seed: int) -> str:
    """Run one tick of the QNN context binaries on the HTP simulator: a correctness check."""
    import numpy as np

    from edgekit.loop import TickContext
    from edgekit.runtimes.htp import HtpRuntime

    rt = HtpRuntime({n: Path(p) for n, p in contexts.items()}, tgt.name)
    program.reset(seed)
    out = program.tick(TickContext(rt), program.sample_observation(np.random.default_rng(seed)))
    finite = all(np.isfinite(np.asarray(v, np.float64)).all() for v in out.values())
    return (
        f"ran one tick of the QNN context binaries on the {rt.name} ({tgt.name}): outputs "
        f"{'finite' if finite else 'NOT FINITE'}; simulator time is not device latency and is "
        "not reported"
    )
