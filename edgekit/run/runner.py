"""``edgekit run recipe.yaml``: every stage of a recipe in order, one verdict, CI reports.

Each stage writes its artifact folder under the run folder (``01-distill/``, ``02-quantize/``,
``03-export/``) through the same library call as its command, and records what it was made
from in ``.cache/NN-stage.json``: a hash of its settings, its input (the model's file, or a
factory's source file; or the previous artifact) and its data. A re-run skips a stage whose
hash is unchanged and whose artifact still verifies, so a CI cache of the run folder works. The
bench stage always runs: a latency verdict is a measurement of this machine now (or a fresh
estimate for a target that is not here).

Gates: every ``max_error`` of a stage (fidelity) and every target's budget (latency) is one gate
in the report (one JUnit test case each). A failed gate does not stop the run unless a later
stage needs what it did not write; those stages and their gates are reported as skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit import progress
from edgekit.bench.config import BenchConfig
from edgekit.destinations import new_folder, write_text_atomic
from edgekit.errors import EXIT_GATE, EXIT_OK, EdgekitError, GateFailed
from edgekit.eval.config import EvalConfig
from edgekit.export.config import OnnxExport
from edgekit.reports.envelope import schema_tag
from edgekit.run.cache import cached_record, content_hash, edgekit_version, file_key, model_key
from edgekit.run.recipe_file import load_recipe, recipe_hash
from edgekit.run.schema import Recipe, RecipeError
from edgekit.run.stages import STAGE_RUNNERS, bench_targets, latency_gate, run_eval, stage_entry

RUN_SCHEMA = schema_tag("run")  # edgekit.run/1: the report family's envelope, edgekit.reports
Event = Callable[[str, dict[str, Any]], None]  # (event, details): stage-start, stage-end


class RunError(EdgekitError):
    """A stage could not run (bad input, missing backend): the run stops with its exit code.

    The reports are still written, with the stage marked failed and the rest skipped."""

    def __init__(self, message: str, exit_code: int, result: RunResult) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


@dataclass
class RunResult:
    """What ``edgekit.run`` returns: the report (the JSON) and where the run folder is."""

    out: Path
    report: dict[str, Any]
    files: dict[str, Path]  # report name -> file (json, junit, markdown, plots)

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])

    @property
    def exit_code(self) -> int:
        return int(self.report["exit_code"])


@dataclass
class _Produced:
    """An artifact a stage wrote, and which targets it is for."""

    path: Path
    key: str  # content key, for the next stage's cache hash
    target: str | None  # None: runs anywhere (FP32 / CPU-quantized ONNX)


def run(
    recipe: Recipe | str | Path,
    out: str | Path | None = None,
    *,
    preset: str | None = None,
    data: str | None = None,
    overrides: list[str] | None = None,
    recipe_dir: Path | None = None,
    on_event: Event | None = None,
    distill_progress: Any = None,
    reports: bool = True,
) -> RunResult:
    """Run ``recipe`` (a :class:`Recipe` or a YAML path) into the run folder ``out``.

    Args:
        recipe: the recipe, or the path of its YAML file.
        out: run folder (default ``out/<recipe name>``); kept between runs as the stage cache.
        preset: replace a zoo model's preset (``tiny`` in tests; ``default`` otherwise).
        data: observations for distill/quantize instead of the recipe's ``data``.
        overrides: ``KEY=VALUE`` settings applied to the recipe file before validation
            (``--set``); recorded in the report.
        recipe_dir: folder relative paths in the recipe start from (default: the file's).
        on_event: called with ("stage-start" | "stage-end", details) for progress display.
        distill_progress: a distillation progress callback (see ``edgekit.distill``).
        reports: write report.json, junit.xml, summary.md and the latency plots.

    Returns:
        The run's result; ``result.exit_code`` is 0 when every gate passed, 1 otherwise.

    Raises:
        RecipeError: the recipe is invalid (exit 2), before any work.
        RunError: a stage could not run (exit 2 bad input, 3 missing backend); reports written.
    """
    path: Path | None = None
    if not isinstance(recipe, Recipe):
        path = Path(recipe)
        recipe = load_recipe(path, overrides)
    elif overrides:
        raise RecipeError("overrides apply to a recipe file; pass its path")
    base = recipe_dir or (path.parent if path else Path.cwd())
    try:
        ref = recipe.source_ref(base, preset)
    except RecipeError as e:
        if path is None:
            raise
        raise RecipeError(f"{path}: {e}") from None
    data = data or recipe.path_for("data", base)
    weights = recipe.path_for("weights", base)
    out = Path(out) if out is not None else Path("out") / recipe.name
    with new_folder(out):  # a run this one's full disk cut short leaves no half folder
        (out / ".cache").mkdir(exist_ok=True)
        return _run(recipe, path, ref, data, weights, out, overrides, preset, on_event,
                    distill_progress, reports)  # fmt: skip


def _run(
    recipe: Recipe,
    path: Path | None,
    ref: str,
    data: str | None,
    weights: str | None,
    out: Path,
    overrides: list[str] | None,
    preset: str | None,
    on_event: Event | None,
    distill_progress: Any,
    reports: bool,
) -> RunResult:
    emit = on_event or (lambda event, details: None)
    t_start = time.perf_counter()

    report: dict[str, Any] = {  # the body; the envelope (schema, gates, verdict) goes around it
        "recipe": {
            "name": recipe.name,
            "path": str(path) if path else None,
            "sha256": recipe_hash(recipe),
            "schema_version": recipe.schema_version,
            "overrides": list(overrides or []),
            "preset": preset,
        },
        "model": ref,
        "data": data,
        "out": str(out),
        "stages": [],
        "gates": [],
        "targets": {},
    }
    state = RunState(recipe, ref, weights, data, out, emit, distill_progress)
    error: EdgekitError | None = None
    error_at = -1
    for i, stage in enumerate(recipe.stages):
        if error is not None or state.blocked:
            report["stages"].append(_skipped_stage(i, stage, state.blocked or "an error"))
            if isinstance(stage, BenchConfig):
                report["gates"] += _skipped_budgets(recipe, state.blocked or "an error")
            continue
        emit("stage-start", {"index": i, "stage": stage.stage, "total": len(recipe.stages)})
        t0 = time.perf_counter()
        with progress.task(f"[{i + 1}/{len(recipe.stages)}] {stage.stage}") as step:
            try:
                entry, gates = state.run_stage(i, stage, report)
            except GateFailed as e:  # a refusal that writes nothing (an unfaithful FP32 export)
                entry = stage_entry(i, stage, "failed", None, "", str(e), {})
                gates = [_stage_gate_failed(stage, str(e))]
                state.blocked = f"the {stage.stage} stage failed its gate"
            except EdgekitError as e:
                entry = stage_entry(i, stage, "failed", None, "", str(e), {})
                gates = []
                error, error_at = e, i
            step.failed = entry["status"] == "failed"
            step.update(info=f"{entry['status']}: {entry['summary']}"[:100])
        entry["seconds"] = time.perf_counter() - t0
        _time_gates(gates, entry["seconds"])
        report["stages"].append(entry)
        report["gates"] += gates
        emit("stage-end", entry)

    failed = [g for g in report["gates"] if g["status"] == "failed"]
    from edgekit import __version__
    from edgekit.reports.envelope import envelope

    passed = error is None and not failed and not state.blocked
    report["exit_code"] = error.exit_code if error else (EXIT_OK if passed else EXIT_GATE)
    report["error"] = str(error) if error else None
    report["seconds"] = time.perf_counter() - t_start
    report["edgekit"] = __version__
    warnings = [f"{s['stage']}: {w}" for s in report["stages"] for w in s.get("warnings", [])]
    report = envelope("run", report, report["gates"], passed=passed, warnings=warnings)
    files = write_reports(report, out) if reports else {}
    result = RunResult(out, report, files)
    if error is not None:
        name = recipe.stages[error_at].stage
        raise RunError(f"stages[{error_at}] {name}: {error}", error.exit_code, result)
    return result


def write_reports(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """report.json, junit.xml, summary.md and the plots (:func:`edgekit.run.plot.write_plots`:
    latency-<target>.png, ticks-<target>.png, stages.png, variants.png) in ``out`` (atomic)."""
    from edgekit.run.plot import write_plots
    from edgekit.run.reports import junit_xml, markdown_summary

    try:
        plots = write_plots(report, out)
    except ModuleNotFoundError as e:  # the plots extra is not installed: the rest still ships
        if (e.name or "").partition(".")[0] != "matplotlib":
            raise
        plots = {}
        report.setdefault("notes", []).append(
            "latency plots skipped: matplotlib is not installed (pip install 'edgekit[plots]')"
        )
    files = {
        "json": write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n"),
        "junit": write_text_atomic(out / "junit.xml", junit_xml(report)),
        "markdown": write_text_atomic(out / "summary.md", markdown_summary(report, plots)),
    }
    files.update({f"plot:{t}": out / name for t, name in plots.items()})
    return files


class RunState:
    """What the stages share: the model, the artifacts written so far, the cache keys."""

    def __init__(
        self,
        recipe: Recipe,
        ref: str,
        weights: str | None,
        data: str | None,
        out: Path,
        emit: Event,
        distill_progress: Any,
    ) -> None:
        self.recipe, self.ref, self.weights, self.data, self.out = recipe, ref, weights, data, out
        self.emit, self.distill_progress = emit, distill_progress
        self.produced: list[_Produced] = []
        self.blocked: str | None = None
        self._source: Any = None
        self.source_key = content_hash(
            {"ref": ref, "weights": file_key(weights), "model": model_key(ref)}
        )
        self.data_key = file_key(data) if data else None

    # -- inputs --------------------------------------------------------------------------

    def source(self) -> Any:
        from edgekit.loader import load

        if self._source is None:
            self._source = load(self.ref, weights=self.weights)
        return self._source

    def current(self) -> tuple[Any, str]:
        """The input of the next stage: the last artifact, or the model."""
        from edgekit.loader import load

        if self.produced:
            last = self.produced[-1]
            return load(str(last.path)), last.key
        return self.source(), self.source_key

    # -- stages --------------------------------------------------------------------------

    def run_stage(
        self, i: int, stage: Any, report: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if isinstance(stage, BenchConfig):
            entry, gates, targets = bench_targets(self, i, stage)
            report["targets"] = targets
            return entry, gates
        if isinstance(stage, EvalConfig):
            return run_eval(self, i, stage)
        folder = self.out / f"{i + 1:02d}-{stage.stage}"
        input_key = self.produced[-1].key if self.produced else self.source_key
        settings = stage.model_dump(mode="json")
        key = content_hash(
            {
                "settings": settings,
                "input": input_key,
                "data": self.data_key,
                "v": edgekit_version(),
            }
        )
        record_path = self.out / ".cache" / f"{folder.name}.json"
        cached = cached_record(record_path, key, folder)
        if cached is not None:
            record, status = cached, "cached"
        else:
            record = STAGE_RUNNERS[stage.stage](self, stage, folder)
            record["key"] = key
            if record.get("artifact_written", True):
                write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
            status = "ran"
        gates = record.get("gates", [])
        if record.get("artifact_written", True):
            self.produced.append(_Produced(folder, key, record.get("for_target")))
        else:
            self.blocked = f"the {stage.stage} stage failed its gate and wrote no artifact"
        entry = stage_entry(
            i,
            stage,
            "failed" if any(g["status"] == "failed" for g in gates) else status,
            str(folder) if record.get("artifact_written", True) else None,
            key,
            record.get("summary", ""),
            record.get("report", {}),
        )
        entry["warnings"] = list(record.get("warnings", []))
        return entry, gates


def _time_gates(gates: list[dict[str, Any]], seconds: float) -> None:
    """Charge a stage's seconds to the gates it judged and did not time itself (shared, so
    the JUnit cases add up to the stage); a skipped gate took no time."""
    untimed = [g for g in gates if g.get("seconds") is None and g["status"] != "skipped"]
    for g in untimed:
        g["seconds"] = seconds / len(untimed)


def _skipped_stage(i: int, stage: Any, why: str) -> dict[str, Any]:
    return stage_entry(i, stage, "skipped", None, "", f"not run: {why}", {})


def _skipped_budgets(recipe: Recipe, why: str) -> list[dict[str, Any]]:

    return [latency_gate(name, None, None, why=f"not run: {why}") for name in recipe.targets]


def _stage_gate_failed(stage: Any, message: str) -> dict[str, Any]:
    what = "ONNX parity" if isinstance(stage, OnnxExport) else "fidelity"
    budget = getattr(stage, "max_error", None)
    return {
        "id": f"fidelity.{stage.stage}",
        "kind": "fidelity",
        "name": f"{stage.stage}: {what}",
        "stage": stage.stage,
        "target": getattr(stage, "target", None),
        "metric": what,
        "value": None,
        "limit": getattr(budget, "limit", budget),  # an ErrorBudget, or export's number
        "unit": "ratio",
        "status": "failed",
        "evidence": "measured",
        "method": "",
        "message": message,
    }


__all__ = ["RunError", "RunResult", "run", "write_reports"]
