"""Bench a model's whole control tick on a runtime and give a verdict against a budget."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import progress
from edgekit.bench.config import BenchConfig
from edgekit.bench.estimated import EstimateRefused, EstimateReport, estimate_bench
from edgekit.bench.host import isa_notes
from edgekit.bench.report import budget_warnings, model_info, write_report
from edgekit.bench.stats import LatencyStats
from edgekit.errors import BackendMissingError, BadInputError, EdgekitError
from edgekit.gates import Gate, Gated, upper_bound
from edgekit.loader import OnnxSource, Source, TorchSource, load, load_origin
from edgekit.loop import LoopProgram
from edgekit.loop.timing import time_ticks
from edgekit.models import build_program
from edgekit.reports.envelope import envelope
from edgekit.runtimes import OrtRuntime, TorchRuntime, default_threads
from edgekit.spec import ProgramSpec
from edgekit.targets import Target, get_target, why_not_measurable
from edgekit.validate import loop_override, show_value

GATES = ("p50", "p90", "p99", "max", "mean")


@dataclass
class StageRow:
    name: str
    kind: str  # "network" or "host"
    calls: int
    p50_ms: float
    mean_ms: float
    share: float  # of the mean tick


@dataclass
class BenchReport(Gated):
    model: dict[str, Any]
    target: Target
    runtime: dict[str, Any]
    stats: LatencyStats
    stages: list[StageRow]
    hz: float
    budget_ms: float
    budget_source: str
    gate: str
    ticks: int
    warmup: int
    notes: list[str] = field(default_factory=list)
    samples_ms: list[float] = field(default_factory=list)  # every timed tick, in order
    warmup_ms: list[float] = field(default_factory=list)  # the warm-up ticks (not in stats)
    planning_ticks: list[int] | None = None  # ticks that ran the networks (None: every tick)

    @property
    def gates(self) -> list[Gate]:
        value, name = self.stats.stat(self.gate), self.target.name
        method = (
            f"whole tick timed on this host, {self.ticks} ticks after {self.warmup} warm-up, "
            f"{self.runtime.get('name', 'onnxruntime')}"
        )
        return [
            upper_bound(
                "bench", "latency", self.gate, value, self.budget_ms, method, unit="ms",
                target=name, name=f"{name}: {self.gate} tick <= {self.budget_ms:g} ms",
                message=f"budget missed: {self.gate} {value:.2f} ms > {self.budget_ms:.2f} ms "
                f"on {name}",
            )
        ]  # fmt: skip

    @property
    def warnings(self) -> list[str]:
        return budget_warnings(self.budget_ms, self.hz)

    def to_dict(self) -> dict[str, Any]:
        body = {
            "report": "edgekit.bench",
            "model": self.model,
            "target": self.target.to_dict(),
            "measurement": {
                "kind": "measured",
                "method": "wall clock (time.perf_counter_ns) around each whole tick on this "
                "host, after warm-up; observations prepared before the clock starts",
                "ticks": self.ticks,
                "warmup": self.warmup,
            },
            "runtime": self.runtime,
            "loop": {"hz": self.hz, "period_ms": 1000.0 / self.hz},
            "budget": {"ms": self.budget_ms, "gate": self.gate, "source": self.budget_source},
            "stats_ms": self.stats.to_dict(),
            "samples_ms": self.samples_ms,
            "warmup_samples_ms": self.warmup_ms,
            "planning_ticks": self.planning_ticks,
            "stages": [s.__dict__ for s in self.stages],
            "notes": self.notes,
        }
        return envelope("bench", body, self.gates, warnings=self.warnings)

    def write_json(self, path: str | Path) -> None:
        write_report(path, self.to_dict())


def parse_loop_params(items: list[str] | None) -> dict[str, Any]:
    """``["num_inference_steps=4", "scheduler=ddpm"]`` -> typed dict (JSON scalars)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise BadInputError(f"--loop {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def resolve_program(
    source: Source, program: str | None, overrides: dict[str, Any]
) -> tuple[LoopProgram, float]:
    """The loop program to run (with ``--loop`` overrides) and its loop rate."""
    spec = source.spec
    if program is None:
        pspec = spec.program
    elif program in spec.programs:
        pspec = spec.programs[program]
    else:
        known = ", ".join(spec.programs) or "(none)"
        raise BadInputError(f"--program {program!r}: not a program of {source.ref}; known: {known}")
    unknown = sorted(set(overrides) - set(pspec.params))
    if unknown:
        raise BadInputError(
            f"--loop {unknown[0]}: not a parameter of program {pspec.name!r}; "
            f"known: {', '.join(sorted(pspec.params))}"
        )
    for key, value in overrides.items():
        loop_override(key, value, pspec.params[key], pspec.name)
    try:
        prog = build_program(ProgramSpec(pspec.name, {**pspec.params, **overrides}))
    except (ValueError, TypeError) as e:  # a program refusing its parameters
        if not overrides:
            raise
        raise BadInputError(f"--loop {_shown(overrides)}: {e}") from e
    return prog, pspec.hz or spec.hz


def _shown(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k}={show_value(v)}" for k, v in overrides.items())


@contextmanager
def _blame_overrides(overrides: dict[str, Any] | None) -> Iterator[None]:
    """A tick that fails only because ``--loop`` changed a parameter the networks are built for
    (``context``, ``image_size``...) is bad input, not a bug: say which override did it."""
    try:
        yield
    except EdgekitError:
        raise
    except Exception as e:
        if not overrides:
            raise
        first = (str(e).strip().splitlines() or [""])[0]
        raise BadInputError(
            f"--loop {_shown(overrides)}: the loop program fails with this value "
            f"({type(e).__name__}: {first}); the networks are built for the default"
        ) from e


def _runtime(
    source: Source,
    runtime: str,
    threads: int,
    spinning: bool,
    notes: list[str],
    workdir: Path,
    ov_precision: str = "f32",
) -> Any:
    if runtime == "ort":
        from edgekit.export.onnx import ensure_onnx

        if isinstance(source, TorchSource):
            notes.append("exported to ONNX on the fly (parity checked) for this run")
        files = ensure_onnx(source, workdir / "onnx")
        return OrtRuntime(files, threads=threads, spinning=spinning)
    if runtime == "openvino":
        from edgekit.export.onnx import ensure_onnx
        from edgekit.runtimes.openvino import OpenVinoRuntime

        if isinstance(source, TorchSource):
            notes.append("exported to ONNX on the fly (parity checked) for this run")
        rt = OpenVinoRuntime(ensure_onnx(source, workdir / "onnx"), threads, ov_precision)
        notes.append(f"OpenVINO CPU plugin, inference precision {ov_precision} (set, not left "
                     "to the plugin)")  # fmt: skip
        return rt
    if runtime == "tensorrt":
        from edgekit.runtimes import TrtRuntime

        engines, built = _engines(source)
        notes.append("TensorRT engines on this device's GPU (inputs copied in, outputs out)")
        return TrtRuntime(engines, built)
    if runtime == "torch":
        if isinstance(source, OnnxSource):
            source = _torch_twin(source)
            notes.append(f"torch runtime rebuilt the PyTorch source {source.ref}")
        return TorchRuntime(source.networks, source.spec, threads)
    raise BadInputError(f"--runtime {runtime!r}: expected ort, openvino, torch or tensorrt")


def _check_precision(measured: bool, runtime: str, precision: str | None) -> None:
    """``--precision``: what an estimate assumes, or OpenVINO's inference precision."""
    if precision is None:
        return
    if measured and runtime != "openvino":
        raise BadInputError(
            "--precision on a measured target sets OpenVINO's inference precision (--runtime "
            "openvino); other runtimes run the artifact as it is"
        )
    if measured and precision not in ("fp32", "bf16"):
        raise BadInputError(f"--precision {precision}: OpenVINO runs fp32 or bf16 here")
    if not measured and precision == "bf16":
        raise BadInputError("--precision bf16: estimates take fp32, fp16, int8 or int16")


def _engines(source: Source) -> tuple[dict[str, Path], dict[str, Any]]:
    """The built engines of a ``--format tensorrt --build`` artifact, and its build record
    (TensorRT version, GPU) that :class:`TrtRuntime` checks against the device."""
    from edgekit.artifacts import load_artifact

    folder = Path(source.ref)
    built = {}
    if folder.is_dir():
        built = load_artifact(folder, verify=False).manifest.checks.get("tensorrt", {})
    engines = built.get("engines") or {}
    if not engines:
        raise BadInputError(
            f"{source.ref}: --runtime tensorrt needs engines: export with --format tensorrt "
            "--build on the device"
        )
    from edgekit.artifacts import sha256_file

    out = {n: folder / e["file"] for n, e in engines.items()}
    for n, e in engines.items():
        if not out[n].is_file() or sha256_file(out[n]) != e["sha256"]:
            raise BadInputError(f"{out[n]}: engine missing or changed since it was built")
    return out, built


def _torch_twin(source: OnnxSource) -> TorchSource:
    """The PyTorch model an ONNX artifact was exported from, verified by weight hash."""
    import importlib.util

    origin = source.origin
    if importlib.util.find_spec("torch") is None:
        raise BackendMissingError(
            f"{source.ref}: --runtime torch runs the PyTorch model, and torch is not installed "
            "here: pip install 'edgekit[compress]'"
        )
    if origin.get("type") != "torch":
        raise BadInputError(
            f"{source.ref}: --runtime torch needs the PyTorch model, but this artifact was made "
            "from an ONNX file; use --runtime ort"
        )
    twin = load_origin(origin, f"{source.ref}: --runtime torch runs the PyTorch model, which")
    if not isinstance(twin, TorchSource) or twin.sha256 != origin["sha256"]:
        raise BadInputError(
            f"{source.ref}: its PyTorch source {origin['ref']} no longer has the weights it was "
            "exported from (hash differs); re-export, or use --runtime ort"
        )
    return twin


def bench(
    model: str | Path | Source, config: BenchConfig | None = None
) -> BenchReport | EstimateReport:
    """Measure the whole control tick of ``model`` on ``config.target``, or, for a target that
    is not this machine, estimate it (an :class:`EstimateReport`, labelled ``estimated``).
    Either report's ``passed`` / ``gates`` hold the tick to the budget (exit 1 in the CLI).

    Raises:
        EstimateRefused: the target can only be estimated and ``require_measured`` (exit 1).
        BadInputError: bad reference, runtime, program or option (exit code 2).
    """
    cfg = config or BenchConfig()
    runtime, ticks, warmup, gate, seed = cfg.runtime, cfg.ticks, cfg.warmup, cfg.gate, cfg.seed
    hz, budget_ms, precision, loop_params = cfg.hz, cfg.budget_ms, cfg.precision, cfg.loop
    tgt = get_target(cfg.target)
    on_device = runtime == "tensorrt" and tgt.family == "jetson"  # measured on the Jetson
    if not tgt.measurable_here and not on_device and cfg.require_measured:
        raise EstimateRefused(
            f"--require-measured: {why_not_measurable(tgt)}; refusing to ship on an estimate"
        )
    _check_precision(tgt.measurable_here or on_device, runtime, precision)
    threads = cfg.threads or default_threads()
    spinning, program = cfg.spinning, cfg.program
    source = load(str(model)) if isinstance(model, str | Path) else model
    prog, program_hz = resolve_program(source, program, loop_params or {})
    rate = hz or program_hz
    budget = budget_ms or tgt.budget_ms(rate)
    budget_source = (
        "--budget-ms" if budget_ms else f"default: loop period x {tgt.headroom} headroom"
    )
    if not tgt.measurable_here and not on_device:
        with _blame_overrides(loop_params):
            return estimate_bench(source, tgt, prog, rate, budget, budget_source, precision, seed)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as work:
        with progress.task(f"loading the model on {runtime}"):
            ov = "bf16" if precision == "bf16" else "f32"
            rt = _runtime(source, runtime, threads, spinning, notes, Path(work), ov)
        if runtime == "ort":
            notes += isa_notes(source, tgt)
        with _blame_overrides(loop_params):
            samples = time_ticks(prog, rt, ticks, warmup, seed)
        if samples.plans_every > 1:
            notes.append(
                f"the networks ran on {int(samples.planned.sum())} of {ticks} ticks (an action "
                "chunk queue executes the others): p50 is a queued tick, p99/max a planning one"
            )
        settings = rt.settings()
    # misses are ticks over the budget the verdict holds (not the bare loop period)
    stats = LatencyStats.from_ns(samples.tick_ns, deadline_ms=budget)
    stages = _stage_rows(prog, samples.stage_ns, samples.tick_ns, samples.calls)
    return BenchReport(
        model=model_info(source, prog),
        target=tgt,
        runtime=settings,
        stats=stats,
        stages=stages,
        hz=rate,
        budget_ms=budget,
        budget_source=budget_source,
        gate=gate,
        ticks=ticks,
        warmup=warmup,
        notes=notes,
        samples_ms=[float(x) / 1e6 for x in samples.tick_ns],
        warmup_ms=[float(x) / 1e6 for x in samples.warmup_ns],
        planning_ticks=None if samples.planned.all() else np.flatnonzero(samples.planned).tolist(),
    )


def _stage_rows(
    prog: LoopProgram,
    stage_ns: dict[str, np.ndarray],
    tick_ns: np.ndarray,
    observed_calls: dict[str, int],
) -> list[StageRow]:
    calls = prog.calls_per_tick()
    mean_tick = float(tick_ns.mean())
    rows = []
    accounted = np.zeros_like(tick_ns)
    for name, ns in stage_ns.items():
        accounted += ns
        rows.append(
            StageRow(
                name,
                "network" if name in calls else "host",
                observed_calls.get(name, calls.get(name, 1)),
                float(np.median(ns)) / 1e6,
                float(ns.mean()) / 1e6,
                float(ns.mean()) / mean_tick,
            )
        )
    rest = tick_ns - accounted
    rows.append(
        StageRow(
            "other",
            "host",
            1,
            float(np.median(rest)) / 1e6,
            float(rest.mean()) / 1e6,
            float(rest.mean()) / mean_tick,
        )
    )
    return rows
