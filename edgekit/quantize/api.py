"""``edgekit quantize``: orchestrates calibration, the precision's handler, fidelity and the gate.

Flow: FP32 ONNX networks (exported if the source is PyTorch) -> calibration observations
(split: the last part is held out) -> each network's real inputs captured by running the FP32
loop programs on them -> the precision's handler writes quantized networks -> whole-tick
fidelity vs FP32 on the held-out observations, on the runtime the target uses -> gate -> an
artifact folder (written only when the gate passes) that ``edgekit export`` and ``edgekit
bench`` take as it is.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgekit import progress
from edgekit.artifacts import (
    Discard,
    Manifest,
    check_out_dir,
    sha256_file,
    staging_dir,
    write_manifest,
)
from edgekit.errors import BadInputError, InputSpecError
from edgekit.export.onnx import ensure_onnx
from edgekit.gates import Gate, Gated
from edgekit.isa import host_isa
from edgekit.loader import Source, load, source_info
from edgekit.loop import LoopProgram
from edgekit.loop.capture import capture
from edgekit.loop.fidelity import (
    FidelityRow,
    decision_metrics,
    metric_value,
    tick_fidelity,
    worst_error,
)
from edgekit.models import build_program
from edgekit.quantize.config import Int8Config, QuantizeConfig, check_keep_float
from edgekit.quantize.context import Context, Outcome
from edgekit.quantize.handlers import HANDLERS
from edgekit.reports.envelope import envelope, speed_warnings
from edgekit.runtimes import OrtRuntime, default_threads
from edgekit.targets import Target, get_target


@dataclass
class QuantizeResult(Gated):
    """The quantized artifact (``out``, written only when every gate passed), its report
    (the manifest's ``checks.quantize``) and its whole-tick fidelity rows."""

    out: Path
    config: QuantizeConfig
    report: dict[str, Any]
    fidelity: list[FidelityRow] = field(default_factory=list)
    written: bool = False
    measured_on: str = ""

    @property
    def error(self) -> float:
        return worst_error(self.fidelity)

    @property
    def gated_value(self) -> float | None:
        """The figure the budget holds (worst rel-L2, or the worst token/choice agreement;
        None when the tick has no output of that kind)."""
        budget = self.config.max_error
        return metric_value(self.fidelity, budget.metric if budget else None)

    @property
    def gates(self) -> list[Gate]:
        budget = self.config.max_error
        if budget is None:
            return []
        value = self.gated_value
        why = self.report.get("scheme", "")
        if value is None:
            why = f"the tick has no {budget.metric} output: no integer tokens or choices"
        gate = budget.gate(
            "quantize",
            value,
            f"vs FP32 on {self.report.get('fidelity', {}).get('holdout_ticks')} held-out ticks, "
            f"{self.measured_on}",
            why=why,
        )
        if not gate.passed:
            gate = replace(gate, message=f"fidelity gate missed: {gate.message}")
        return [gate]

    @property
    def warnings(self) -> list[str]:
        """The quantized tick measured slower than FP32's (where speed was measured)."""
        label = f"{self.report.get('precision', 'quantized')} model"
        return speed_warnings(self.report.get("latency"), label, "FP32 model")

    def to_dict(self) -> dict[str, Any]:
        """The report (``checks.quantize`` of the artifact) in the report envelope."""
        return envelope("quantize", self.report, self.gates, warnings=self.warnings)


def quantize(
    model: str | Path | Source,
    out: str | Path,
    config: QuantizeConfig | None = None,
    calib: str | Path | None = None,
    *,
    force: bool = False,
) -> QuantizeResult:
    """Quantize ``model`` into the artifact folder ``out``.

    ``calib`` is a calibration ``.npz`` (or folder), or the string ``"synthetic"`` to
    calibrate on generated observations explicitly; None is an error (never calibrate on made-up
    data silently).

    Returns a :class:`QuantizeResult`; when fidelity misses ``config.max_error`` it did not
    pass (``result.passed``, exit 1 in the CLI) and nothing was written.

    Raises:
        BadInputError / InputSpecError: bad model, data or option (exit 2).
    """
    from edgekit.calib import load_calibration, synthesize_for_program
    from edgekit.validate import observation_bounds

    config = config or Int8Config()
    target = get_target(config.target)
    handler = HANDLERS.get(config.precision)
    handler.check_target(config, target)
    out = Path(out)
    check_out_dir(out, force)
    if calib is None:
        raise InputSpecError(
            "--calib is required: a calibration .npz (see calib_data/README.md), or "
            "`--calib synthetic` to calibrate on generated observations explicitly"
        )
    source = load(str(model)) if isinstance(model, str | Path) else model
    check_keep_float(config, [n.name for n in source.spec.networks])
    programs = _programs(source)
    default = next(iter(programs.values()))
    if str(calib) == "synthetic":
        cset = synthesize_for_program(default, n=32, seed=config.seed)
    else:
        bounds = observation_bounds(source, default)
        cset = load_calibration(Path(calib), default.observation_spec(), bounds=bounds)
    calib_set, holdout_set = cset.split(config.holdout)
    threads = default_threads()
    with tempfile.TemporaryDirectory(prefix="edgekit-quantize-") as tmpdir:
        work = Path(tmpdir)
        fp32_files = ensure_onnx(source, work / "fp32", tick_checks=1)
        fp32 = OrtRuntime(fp32_files, threads=threads)
        with progress.task(
            f"capturing network inputs: FP32 loop on {calib_set.n}+{holdout_set.n} observations"
        ):
            feeds, ran = capture(
                programs, fp32, calib_set.observations(), config.max_feeds, config.seed
            )
            holdout_feeds, _ = capture(
                programs, fp32, holdout_set.observations(), config.max_feeds, config.seed
            )
        missing = sorted(set(fp32_files) - set(feeds))
        if missing:
            raise InputSpecError(
                f"calibration data reaches no program that calls network(s) {missing}: check "
                "the observation names/shapes in the calibration file"
            )
        fid_programs = {n: programs[n] for n in ran}
        holdout_obs = holdout_set.observations()

        def fidelity(runtime: Any) -> list[FidelityRow]:
            with progress.task(f"fidelity vs FP32 on {len(holdout_obs)} held-out ticks"):
                return tick_fidelity(fid_programs, fp32, runtime, holdout_obs, config.seed)

        ctx = Context(
            config,
            target,
            fp32_files,
            fp32,
            feeds,
            holdout_feeds,
            fidelity,
            work,
            threads,
            program=default,
        )
        with staging_dir(out, force) as stage:
            outcome: Outcome = handler.run(ctx, stage)
            result = QuantizeResult(out, config, {}, outcome.fidelity, False, outcome.measured_on)
            result.report = _report(
                config,
                target,
                source,
                cset,
                calib_set,
                holdout_set,
                fp32_files,
                outcome,
                ran,
                result,
            )
            if not result.passed:
                raise Discard  # the artifact missed its gate: write nothing
            ir = any(p.suffix == ".xml" for p in outcome.files.values())
            files = {
                n: {"file": p.name, "sha256": sha256_file(p)} for n, p in outcome.files.items()
            }
            for n, p in outcome.files.items():  # OpenVINO IR: the weights beside the graph
                if p.suffix == ".xml":
                    files[f"{n}.bin"] = {"file": p.with_suffix(".bin").name,
                                         "sha256": sha256_file(p.with_suffix(".bin"))}  # fmt: skip
            manifest = Manifest(
                stage="quantize",
                format="openvino" if ir else "onnx",
                source=source_info(source),
                spec=source.spec,
                files=files,
                checks={"quantize": result.report},
            )
            write_manifest(stage, manifest)
            result.written = True
    return result


def isa_report(target: Target, scheme: dict[str, Any]) -> dict[str, Any] | None:
    """For CPU targets: the ISA class the artifact is made for, this host's, and what that
    means for the figures measured here (None for other targets)."""
    if target.family != "cpu":
        return None
    host = host_isa()
    notes = []
    if target.isa not in (None, host.name):
        notes.append(
            f"made for {target.device} ({target.name}); fidelity and speed were measured on "
            f"this host's {host.name} kernels"
        )
    if host.saturates_u8s8 and not scheme.get("reduce_range"):
        notes.append(
            "this host's AVX2 kernels saturate on full-range weights: the fidelity measured "
            "here is worse than on the CPU the artifact is made for"
        )
    return {
        "made_for": scheme.get("isa") or target.cpu_isa().name,
        "host": host.to_dict(),
        "note": "; ".join(notes) or None,
    }


def _programs(source: Source) -> dict[str, LoopProgram]:
    """Every loop program of the model, the default first (its observations define the data)."""
    spec = source.spec
    first = next((k for k, p in spec.programs.items() if p == spec.program), "default")
    out = {first: build_program(spec.program)}
    for name, p in spec.programs.items():
        if name != first:
            out[name] = build_program(p)
    return out


def _report(
    config: QuantizeConfig,
    target: Any,
    source: Source,
    cset: Any,
    calib_set: Any,
    holdout_set: Any,
    fp32_files: dict[str, Path],
    outcome: Outcome,
    ran: list[str],
    result: QuantizeResult,
) -> dict[str, Any]:
    from edgekit.onnxfile import onnx_bytes

    fp32_bytes = sum(onnx_bytes(p) for p in fp32_files.values())
    q_bytes = sum(onnx_bytes(p) for p in outcome.files.values())
    if fp32_bytes <= 0:
        raise BadInputError("FP32 networks are empty")
    return {
        "precision": config.precision,
        "target": target.name,
        "scheme": outcome.scheme,
        "scheme_detail": outcome.scheme_detail,
        "method": outcome.scheme_detail.get("method", getattr(config, "method", None)),
        "calibration": {
            **cset.to_dict_summary(),
            "calibration_samples": calib_set.n,
            "holdout_samples": holdout_set.n,
            "programs_run": ran,
        },
        "size_bytes": {"fp32": fp32_bytes, "quantized": q_bytes, "ratio": q_bytes / fp32_bytes},
        "kept_float": outcome.kept_float,
        "fidelity": {
            "reference": "FP32 ONNX on onnxruntime (optimizations on), same observations and noise",
            "measured_on": outcome.measured_on,
            "holdout_ticks": holdout_set.n,
            "worst_rel_l2": result.error,
            **decision_metrics(outcome.fidelity),
            "max_error": None if config.max_error is None else config.max_error.to_json(),
            "passed": result.passed,
            "rows": [r.to_dict() for r in outcome.fidelity],
        },
        "latency": outcome.latency,
        "cpu_isa": isa_report(target, outcome.scheme_detail),
        "extra": outcome.extra,
        "config": config.to_dict(),
    }
