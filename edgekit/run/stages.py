"""One function per recipe stage: build the command's config, call the library, return a record.

A record is what the run report and the cache keep of a stage: a one-line summary, the stage's
own report (the same JSON its command writes with ``--json``), its gates, whether it wrote an
artifact and which target that artifact is for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from edgekit import progress
from edgekit.bench.config import BenchConfig
from edgekit.distill.config import DistillConfig
from edgekit.eval.config import EvalConfig
from edgekit.export.config import OnnxExport, TensorRTExport
from edgekit.gates import AGREEMENTS, METRIC_NAMES, Gate, Gated
from edgekit.run.schema import ExportStage, QuantizeStage


class RunState(Protocol):
    """What a stage uses of the run (the runner's ``RunState`` is one)."""

    recipe: Any
    ref: str
    data: str | None
    produced: list[Any]
    distill_progress: Any

    def source(self) -> Any: ...
    def current(self) -> tuple[Any, str]: ...
    def emit(self, event: str, data: dict[str, Any]) -> None: ...


def latency_gate(
    target: str,
    report: Any,
    budget_ms: float | None,
    *,
    why: str = "",
) -> dict[str, Any]:
    """The gate of one target's budget, from a bench or estimate report (None: skipped)."""
    if report is None:
        return Gate(
            id=f"latency.{target}", kind="latency", name=f"{target}: tick <= budget",
            stage="bench", metric=None, value=None, limit=budget_ms, unit="ms",
            status="skipped", evidence=None, method="", message=why, target=target,
        ).to_dict()  # fmt: skip
    gate = report.gates[0].to_dict()
    if gate["status"] == "failed":  # the short form: the run report names the target already
        gate["message"] = (
            f"{gate['metric']} {gate['value']:.3g} ms > {gate['limit']:g} ms ({gate['evidence']})"
        )
    return dict(gate)


# --- artifact stages -------------------------------------------------------------------------


def run_distill(state: RunState, stage: DistillConfig, folder: Path) -> dict[str, Any]:
    from edgekit.distill import distill

    res = distill(state.source(), folder, stage, state.data, force=True,
                  progress=state.distill_progress)  # fmt: skip
    head = res.report.get("fidelity", {}).get("headline", {})
    metric, value = head.get("metric", "rel_l2"), float(head.get("value", 0.0))
    what = (
        f"{stage.denoise_steps}-step student"
        if stage.denoise_steps
        else f"width {stage.width:g} / depth {stage.depth:g} student"
    )
    summary = f"{what}: {METRIC_NAMES.get(metric, metric)} {value:.3g}" + _speed(res.report)
    return {"summary": summary, "report": res.report, "gates": _gates(res),
            "artifact_written": res.written, "for_target": None,
            "warnings": res.warnings}  # fmt: skip


def run_quantize(state: RunState, stage: QuantizeStage, folder: Path) -> dict[str, Any]:
    from edgekit.quantize import quantize
    from edgekit.targets import get_target

    tgt = get_target(stage.target)
    model, _ = state.current()
    res = quantize(model, folder, stage.model_copy(update={"target": tgt.name}), state.data,
                   force=True)  # fmt: skip
    scheme = res.report.get("scheme", "")
    agree = "".join(
        f", {METRIC_NAMES[k]} {res.report['fidelity'][k]:.3g}"
        for k in AGREEMENTS
        if res.report.get("fidelity", {}).get(k) is not None
    )
    summary = (
        f"{stage.precision} for {tgt.name} ({scheme}): worst whole-tick rel-L2 "
        f"{res.error:.3g}{agree}" + _speed(res.report)
    )
    return {"summary": summary, "report": res.report, "gates": _gates(res),
            "artifact_written": res.written,
            "for_target": None if tgt.family == "cpu" else tgt.name,
            "warnings": res.warnings}  # fmt: skip


def _gates(result: Gated) -> list[dict[str, Any]]:
    """A verb's gates as run-report records (the message in the report's short form)."""
    out = []
    for g in result.gates:
        d = g.to_dict()
        if d["status"] == "failed":
            shown = "n/a" if g.value is None else f"{g.value:.4g}"
            d["message"] = (
                f"{g.metric} {shown} {'<' if g.metric in AGREEMENTS else '>'} {g.limit:g}"
            )
        out.append(d)
    return out


def run_export(state: RunState, stage: ExportStage, folder: Path) -> dict[str, Any]:
    from edgekit.export import export
    from edgekit.export.onnx import ExportResult
    from edgekit.export.qnn import QnnExportResult
    from edgekit.targets import get_target

    model, _ = state.current()
    target = (
        get_target(stage.target).name
        if not isinstance(stage, OnnxExport) and stage.target
        else None
    )
    res = export(model, folder, stage, force=True)
    if isinstance(res, QnnExportResult):
        err = float(res.report["fidelity"]["worst_rel_l2"])
        fallback = sum(len(v) for v in res.report.get("cpu_fallback", {}).values())
        summary = (
            f"QNN context binaries for {target} (HTP v{res.report['htp_arch']}): whole-tick "
            f"rel-L2 {err:.3g} vs FP32 on the simulator, {fallback} node(s) on CPU"
        )
        gates = [g.to_dict() for g in res.gates]
        for g in gates:
            if g["kind"] == "fidelity":
                g["id"] = "fidelity.export"
                g["name"] = f"export: whole-tick rel-L2 <= {g['limit']:g}"
        return {"summary": summary, "report": res.report, "gates": gates,
                "artifact_written": res.written, "for_target": target}  # fmt: skip
    if isinstance(res, ExportResult):
        worst = max((r.max_abs / r.limit for r in res.parity if r.limit), default=0.0)
        ok = "ok" if res.passed else "FAILED"
        summary = f"ONNX, parity {ok} ({len(res.parity)} checks, worst {worst:.2g} of tolerance)"
        return {"summary": summary, "report": {"parity": [r.__dict__ for r in res.parity]},
                "gates": [g.to_dict() for g in res.failed], "artifact_written": res.written,
                "for_target": None}  # fmt: skip
    assert isinstance(stage, TensorRTExport)
    built = "engines built" if res.report.get("engines") else "build plan written (no TensorRT)"
    summary = f"TensorRT-ready ONNX for {target} ({stage.precision}), {built}"
    return {"summary": summary, "report": res.report, "gates": [], "artifact_written": True,
            "for_target": target}  # fmt: skip


STAGE_RUNNERS: dict[str, Callable[[RunState, Any, Path], dict[str, Any]]] = {
    "distill": run_distill,
    "quantize": run_quantize,
    "export": run_export,
}


def _speed(report: dict[str, Any]) -> str:
    lat = report.get("latency") or {}
    if lat.get("measured") and lat.get("speedup"):
        return f"; x{lat['speedup']:.2f} tick p50 on this CPU"
    return ""


# --- bench -----------------------------------------------------------------------------------


def artifact_for(state: RunState, target: str) -> tuple[Any, str]:
    """What runs on ``target``: the last artifact made for it (or its family), else the last
    target-neutral one (FP32 / CPU-quantized), else the model itself."""
    from edgekit.loader import load
    from edgekit.targets import get_target

    tgt = get_target(target)
    for match in (
        lambda t: t == tgt.name,
        lambda t: t is not None and get_target(t).family == tgt.family and tgt.family != "cpu",
        lambda t: t is None,
    ):
        for p in reversed(state.produced):
            if match(p.target):
                return load(str(p.path)), str(p.path)
    return state.source(), state.ref


def bench_targets(
    state: RunState, i: int, stage: BenchConfig
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    from edgekit.bench import bench
    from edgekit.bench.estimated import EstimateRefused, EstimateReport

    gates, targets, lines, warnings = [], {}, [], []
    for name, spec in state.recipe.targets.items():
        t0 = time.perf_counter()
        model, where = artifact_for(state, name)
        state.emit("bench-target", {"target": name, "artifact": where})
        try:
            per_target = {"target": name, "hz": spec.hz, "budget_ms": spec.budget_ms}
            with progress.task(f"bench {name} on {where}"):
                report = bench(model, stage.model_copy(update=per_target))
        except EstimateRefused as e:  # require_measured on a target that is not here
            gate = latency_gate(name, None, spec.budget_ms, why=str(e))
            seconds = time.perf_counter() - t0
            gates.append({**gate, "status": "failed", "evidence": "estimated", "seconds": seconds})
            targets[name] = _no_latency(spec.budget_ms, where)
            lines.append(f"{name}: refused to estimate")
            continue
        gate = latency_gate(name, report, spec.budget_ms)
        gate["seconds"] = time.perf_counter() - t0  # this target's bench (JUnit time)
        gates.append(gate)
        warnings += [f"{name}: {w}" for w in report.warnings]
        if isinstance(report, EstimateReport):
            targets[name] = {**_no_latency(report.budget_ms, where), "gate": "estimate",
                             "evidence": "estimated", "estimated_ms": report.tick_ms,
                             "report": report.to_dict()}  # fmt: skip
        else:
            targets[name] = {
                **_no_latency(report.budget_ms, where),
                "gate": report.gate,
                "evidence": "measured",
                "stats_ms": report.stats.to_dict(),
                "samples_ms": list(report.samples_ms),
                "deadline_misses": report.stats.deadline_misses,
                "report": report.to_dict(),
            }
        lines.append(f"{name} {gate['value']:.3g} ms {gate['evidence']}")
    entry = stage_entry(i, stage, "ran", None, "", "; ".join(lines), {})
    entry["warnings"] = warnings
    return entry, gates, targets


def _no_latency(budget_ms: float | None, where: str) -> dict[str, Any]:
    return {"budget_ms": budget_ms, "gate": None, "evidence": None, "artifact": where,
            "stats_ms": None, "samples_ms": None, "deadline_misses": None,
            "estimated_ms": None, "report": {}}  # fmt: skip


# --- eval ------------------------------------------------------------------------------------


def run_eval(
    state: RunState, i: int, stage: EvalConfig
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Closed-loop success of the last artifact (as it ships: onnxruntime) vs its teacher."""
    from edgekit.eval import evaluate

    model, _ = state.current()
    res = evaluate(model, stage)
    cand, ref = res.candidate, res.teacher
    summary = f"{stage.env}: success {cand.successes}/{len(cand.episodes)}"
    if ref is not None:
        summary += f" vs teacher {ref.successes}/{len(ref.episodes)}"
        if res.ratio is not None:
            summary += f" (ratio {res.ratio:.2f})"
    gates = [g.to_dict() for g in res.gates]
    paired = res.paired
    for g in gates:
        if g["status"] == "failed":  # the recipe's field, not the CLI flag; the paired test too
            g["message"] = f"success ratio {g['value']:.3f} < min_success_ratio {g['limit']:g}"
            if paired:
                g["message"] += f"; {paired['summary']}"
    status = "failed" if not res.passed else "ran"
    return stage_entry(i, stage, status, None, "", summary, res.report), gates


def stage_entry(
    i: int,
    stage: Any,
    status: str,
    artifact: str | None,
    key: str,
    summary: str,
    report: dict[str, Any],
) -> dict[str, Any]:
    return {
        "index": i,
        "stage": stage.stage,
        "status": status,
        "artifact": artifact,
        "seconds": 0.0,
        "settings_hash": key,
        "settings": stage.model_dump(mode="json"),
        "summary": summary,
        "report": report,
        "warnings": [],
    }
