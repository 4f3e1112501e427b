"""One function per recipe stage: build the command's config, call the library, return a record.

A record is what the run report and the cache keep of a stage: a one-line summary, the stage's
own report (the same JSON its command writes with ``--json``), its gates, whether it wrote an
artifact and which target that artifact is for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.run.schema import BenchStage, DistillStage, EvalStage, ExportStage, QuantizeStage

if TYPE_CHECKING:
    from edgekit.run.runner import RunState

METRIC_NAMES = {
    "rel_l2": "whole-tick rel-L2",
    "action_range_mean_abs": "mean-abs action error (fraction of the action range)",
}


def fidelity_gate(
    stage: str, metric: str, value: float, limit: float, method: str, target: str | None = None
) -> dict[str, Any]:
    ok = value <= limit
    return {
        "id": f"fidelity.{stage}",
        "kind": "fidelity",
        "name": f"{stage}: {METRIC_NAMES.get(metric, metric)} <= {limit:g}",
        "stage": stage,
        "target": target,
        "metric": metric,
        "value": value,
        "limit": limit,
        "unit": "ratio",
        "status": "passed" if ok else "failed",
        "evidence": "measured",
        "method": method,
        "message": "" if ok else f"{metric} {value:.4g} > {limit:g}",
    }


def latency_gate(
    target: str,
    report: Any,
    budget_ms: float | None,
    *,
    why: str = "",
) -> dict[str, Any]:
    """The gate of one target's budget, from a bench or estimate report (None: skipped)."""
    from edgekit.bench.estimated import EstimateReport

    base = {"id": f"latency.{target}", "kind": "latency", "stage": "bench", "target": target,
            "unit": "ms"}  # fmt: skip
    if report is None:
        return {**base, "name": f"{target}: tick <= budget", "metric": None, "value": None,
                "limit": budget_ms, "status": "skipped", "evidence": None, "method": "",
                "message": why}  # fmt: skip
    if isinstance(report, EstimateReport):
        value, stat, evidence = report.tick_ms, "estimate", "estimated"
        name = f"{target}: tick <= {report.budget_ms:g} ms (estimated)"
        method = report.estimate.method
    else:
        stat = report.gate
        value, evidence = report.stats.stat(stat), "measured"
        name = f"{target}: {stat} tick <= {report.budget_ms:g} ms"
        method = (
            f"whole tick timed on this host, {report.ticks} ticks after {report.warmup} "
            f"warm-up, {report.runtime.get('name', 'onnxruntime')}"
        )
    ok = value <= report.budget_ms
    return {
        **base,
        "name": name,
        "metric": stat,
        "value": value,
        "limit": report.budget_ms,
        "status": "passed" if ok else "failed",
        "evidence": evidence,
        "method": method,
        "message": "" if ok else f"{stat} {value:.3g} ms > {report.budget_ms:g} ms ({evidence})",
    }


# --- artifact stages -------------------------------------------------------------------------


def run_distill(state: RunState, stage: DistillStage, folder: Path) -> dict[str, Any]:
    from edgekit.distill import DistillConfig, DistillGateFailed, distill

    cfg = DistillConfig(
        width=stage.width,
        depth=stage.depth,
        denoise_steps=stage.denoise_steps,
        program=stage.program,
        steps=stage.steps,
        batch_size=stage.batch_size,
        lr=stage.lr,
        seed=stage.seed,
        max_error=stage.max_error,
        latency_ticks=stage.latency_ticks,
    )
    try:
        res = distill(
            state.source(), folder, cfg, state.data, force=True, progress=state.distill_progress
        )
        written = True
    except DistillGateFailed as e:
        res, written = e.result, False
    head = res.report.get("fidelity", {}).get("headline", {})
    metric, value = head.get("metric", "rel_l2"), float(head.get("value", 0.0))
    what = (
        f"{stage.denoise_steps}-step student"
        if stage.denoise_steps
        else f"width {stage.width:g} / depth {stage.depth:g} student"
    )
    summary = f"{what}: {METRIC_NAMES.get(metric, metric)} {value:.3g}" + _speed(res.report)
    gates = []
    if stage.max_error is not None:
        method = "student vs teacher on held-out observations, onnxruntime FP32"
        gates.append(fidelity_gate("distill", metric, value, stage.max_error, method))
    return {"summary": summary, "report": res.report, "gates": gates,
            "artifact_written": written, "for_target": None}  # fmt: skip


def run_quantize(state: RunState, stage: QuantizeStage, folder: Path) -> dict[str, Any]:
    from edgekit.quantize import QuantizeConfig, QuantizeGateFailed, quantize
    from edgekit.targets import get_target

    tgt = get_target(stage.target)
    cfg = QuantizeConfig(
        precision=stage.precision,
        target=tgt.name,
        method=stage.method,
        block_size=stage.block_size,
        symmetric=stage.symmetric,
        max_error=stage.max_error,
        latency_ticks=stage.latency_ticks,
    )
    model, _ = state.current()
    try:
        res = quantize(model, folder, cfg, state.data, force=True)
        written = True
    except QuantizeGateFailed as e:
        res, written = e.result, False
    scheme = res.report.get("scheme", "")
    summary = (
        f"{stage.precision} for {tgt.name} ({scheme}): worst whole-tick rel-L2 "
        f"{res.error:.3g}" + _speed(res.report)
    )
    gates = []
    if stage.max_error is not None:
        method = f"vs FP32 on {res.report['fidelity']['holdout_ticks']} held-out ticks, " + str(
            res.report["fidelity"]["measured_on"]
        )
        gates.append(fidelity_gate("quantize", "rel_l2", res.error, stage.max_error, method))
    return {"summary": summary, "report": res.report, "gates": gates, "artifact_written": written,
            "for_target": None if tgt.family == "cpu" else tgt.name}  # fmt: skip


def run_export(state: RunState, stage: ExportStage, folder: Path) -> dict[str, Any]:
    from edgekit.export.onnx import export_onnx
    from edgekit.export.qnn import export_qnn
    from edgekit.export.tensorrt import export_tensorrt
    from edgekit.targets import get_target

    model, _ = state.current()
    gates: list[dict[str, Any]] = []
    target = get_target(stage.target).name if stage.target else None
    if stage.format == "onnx":
        res: Any = export_onnx(model, folder, force=True)
        worst = max((r.max_abs / r.limit for r in res.parity if r.limit), default=0.0)
        summary = f"ONNX, parity ok ({len(res.parity)} checks, worst {worst:.2g} of tolerance)"
        return {"summary": summary, "report": {"parity": [r.__dict__ for r in res.parity]},
                "gates": gates, "artifact_written": True, "for_target": None}  # fmt: skip
    if stage.format == "qnn":
        res = export_qnn(
            model, folder, target=target, strict=stage.strict, max_error=stage.max_error,
            force=True,
        )  # fmt: skip
        err = float(res.report["fidelity"]["worst_rel_l2"])
        fallback = sum(len(v) for v in res.report.get("cpu_fallback", {}).values())
        summary = (
            f"QNN context binaries for {target} (HTP v{res.report['htp_arch']}): whole-tick "
            f"rel-L2 {err:.3g} vs FP32 on the simulator, {fallback} node(s) on CPU"
        )
        if stage.max_error is not None:
            method = str(res.report["fidelity"]["measured_on"]) + " vs FP32 PyTorch"
            gates.append(fidelity_gate("export", "rel_l2", err, stage.max_error, method, target))
        return {"summary": summary, "report": res.report, "gates": gates,
                "artifact_written": True, "for_target": target}  # fmt: skip
    res = export_tensorrt(
        model, folder, target=target, precision=stage.precision or "fp16", build=stage.build,
        force=True,
    )  # fmt: skip
    built = "engines built" if res.report.get("engines") else "build plan written (no TensorRT)"
    summary = f"TensorRT-ready ONNX for {target} ({stage.precision or 'fp16'}), {built}"
    return {"summary": summary, "report": res.report, "gates": gates, "artifact_written": True,
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
    state: RunState, i: int, stage: BenchStage
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    from edgekit.bench import bench
    from edgekit.bench.estimated import EstimateRefused, EstimateReport

    gates, targets, lines = [], {}, []
    for name, spec in state.recipe.targets.items():
        model, where = artifact_for(state, name)
        state.emit("bench-target", {"target": name, "artifact": where})
        try:
            report = bench(
                model,
                target=name,
                ticks=stage.ticks,
                warmup=stage.warmup,
                threads=stage.threads,
                hz=spec.hz,
                budget_ms=spec.budget_ms,
                gate=stage.gate,
                program=stage.program,
                require_measured=stage.require_measured,
            )
        except EstimateRefused as e:  # require_measured on a target that is not here
            gate = latency_gate(name, None, spec.budget_ms, why=str(e))
            gates.append({**gate, "status": "failed", "evidence": "estimated"})
            targets[name] = _no_latency(spec.budget_ms, where)
            lines.append(f"{name}: refused to estimate")
            continue
        gate = latency_gate(name, report, spec.budget_ms)
        gates.append(gate)
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
    return entry, gates, targets


def _no_latency(budget_ms: float | None, where: str) -> dict[str, Any]:
    return {"budget_ms": budget_ms, "gate": None, "evidence": None, "artifact": where,
            "stats_ms": None, "samples_ms": None, "deadline_misses": None,
            "estimated_ms": None, "report": {}}  # fmt: skip


# --- eval ------------------------------------------------------------------------------------


def run_eval(
    state: RunState, i: int, stage: EvalStage
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Closed-loop success of the last artifact (as it ships: onnxruntime) vs its teacher."""
    from edgekit.eval import EvalGateFailed, evaluate

    model, _ = state.current()
    teacher = None if stage.teacher == "none" else stage.teacher
    try:
        res = evaluate(
            model,
            stage.env,
            stage.episodes,
            stage.seed,
            teacher=teacher,
            min_success_ratio=stage.min_success_ratio,
            program=stage.program,
        )
    except EvalGateFailed as e:
        res = e.result
    cand, ref = res.candidate, res.teacher
    summary = f"{stage.env}: success {cand.successes}/{len(cand.episodes)}"
    if ref is not None:
        summary += f" vs teacher {ref.successes}/{len(ref.episodes)}"
        if res.ratio is not None:
            summary += f" (ratio {res.ratio:.2f})"
    gates = []
    if stage.min_success_ratio is not None:
        ok = res.passed
        value = res.ratio
        gates.append({
            "id": "task.eval", "kind": "task", "stage": "eval", "target": None,
            "name": f"eval: {stage.env} success ratio to teacher >= {stage.min_success_ratio:g}",
            "metric": "success_ratio", "value": value, "limit": stage.min_success_ratio,
            "unit": "ratio", "status": "passed" if ok else "failed", "evidence": "measured",
            "method": f"{stage.episodes} seeded closed-loop episodes each, onnxruntime, "
                      "Wilson 95% intervals in the stage report",
            "message": "" if ok else f"success ratio {value} < {stage.min_success_ratio:g}",
        })  # fmt: skip
    status = "failed" if gates and gates[0]["status"] == "failed" else "ran"
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
    }
