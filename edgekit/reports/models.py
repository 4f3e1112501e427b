"""The report family as pydantic models: what every edgekit JSON report is, per kind.

These models describe what the verbs write (``to_dict()`` of their results, ``edgekit run``'s
``report.json``); they are the source of the shipped JSON Schemas (``make schemas``) and what
:func:`edgekit.reports.schemas.validate` checks a report against. The envelope and the gates
are closed (an unknown key is an error); a verb's body names the keys readers rely on and lets
a verb add more (``extra="allow"``) without a schema bump, as the manifest's ``checks`` do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Command(_Closed):
    """What made the report: the verb, and the command line when it was the edgekit CLI."""

    name: str
    argv: list[str] | None = Field(description="the edgekit command line; null: a library call")


class Environment(_Open):
    """The machine the report was made on."""

    host: str
    os: str
    cpu: str
    logical_cpus: int | None
    usable_cpus: int
    cpu_isa: dict[str, Any]
    versions: dict[str, str]


class GateRecord(_Closed):
    """One limit one figure was held to (:class:`edgekit.gates.Gate`)."""

    id: str
    kind: str = Field(description="latency, fidelity, task, placement")
    name: str
    stage: str
    metric: str | None
    value: float | None
    limit: float | None
    unit: str
    status: Literal["passed", "failed", "skipped"]
    evidence: str | None = Field(description="measured or estimated; null: skipped")
    method: str
    message: str = Field("", description="why it failed, or why it was skipped")
    target: str | None = None
    seconds: float | None = Field(None, description="time of the work behind it; null: untimed")


class Envelope(_Open):
    """The keys every report starts with; the verb's body follows."""

    schema_tag: str = Field(alias="schema", pattern=r"^edgekit\.[a-z]+/[0-9]+$")
    schema_version: Literal[1]
    kind: str
    edgekit_version: str
    command: Command
    created: datetime = Field(description="UTC, ISO 8601")
    environment: Environment
    passed: bool = Field(description="no gate failed (exit code 0)")
    verdict: Literal["pass", "fail", "ungated"] = Field(
        description="ungated: passed with no gate set (nothing was held to a limit)"
    )
    gates: list[GateRecord]
    warnings: list[str] = Field(description="e.g. a compressed variant slower than its reference")


# --- bench ------------------------------------------------------------------------------------


class ModelInfo(_Open):
    ref: str
    kind: str
    preset: str | None
    program: str
    program_params: dict[str, Any]
    calls_per_tick: dict[str, int]


class Loop(_Closed):
    hz: float
    period_ms: float


class Budget(_Open):
    ms: float
    gate: str
    source: str


class Measured(_Open):
    kind: Literal["measured"]
    method: str
    ticks: int
    warmup: int


class Estimated(_Open):
    kind: Literal["estimated"]
    method: str
    why: str


class LatencyStats(_Open):
    n: int
    p50: float
    p90: float
    p99: float
    max: float
    min: float
    mean: float
    std: float
    jitter: float
    deadline_ms: float = Field(description="deadline misses are counted against this: the budget")
    deadline_misses: int


class StageRow(_Closed):
    name: str
    kind: str
    calls: int
    p50_ms: float
    mean_ms: float
    share: float


class _BenchBody(Envelope):
    schema_tag: Literal["edgekit.bench/1"] = Field(alias="schema")
    kind: Literal["bench"]
    report: Literal["edgekit.bench"]
    model: ModelInfo
    target: dict[str, Any]
    loop: Loop
    budget: Budget
    notes: list[str]


class BenchMeasured(_BenchBody):
    """A tick timed on this host."""

    measurement: Measured
    runtime: dict[str, Any]
    stats_ms: LatencyStats
    samples_ms: list[float]
    stages: list[StageRow]


class BenchEstimated(_BenchBody):
    """A roofline estimate for a target that is not this machine (no percentiles)."""

    measurement: Estimated
    estimate: dict[str, Any]


class BenchReport(RootModel[BenchMeasured | BenchEstimated]):
    """``edgekit bench --json``: measured on this host, or estimated for another target."""


# --- quantize, distill, eval, export -----------------------------------------------------------


class Latency(_Open):
    """A speed check of the variant against its reference (``measured: false`` says why)."""

    measured: bool


class QuantizeFidelity(_Open):
    reference: str
    measured_on: str
    holdout_ticks: int
    worst_rel_l2: float
    max_error: float | str | None
    passed: bool
    rows: list[dict[str, Any]]


class QuantizeReport(Envelope):
    """``edgekit quantize --json`` (the body is the artifact's ``checks.quantize``)."""

    schema_tag: Literal["edgekit.quantize/1"] = Field(alias="schema")
    kind: Literal["quantize"]
    precision: str
    target: str
    scheme: str
    scheme_detail: dict[str, Any]
    method: str | None
    calibration: dict[str, Any]
    size_bytes: dict[str, float]
    kept_float: list[str]
    fidelity: QuantizeFidelity
    latency: Latency
    cpu_isa: dict[str, Any] | None
    extra: dict[str, Any]
    config: dict[str, Any]


class Headline(_Open):
    metric: str
    value: float


class DistillFidelity(_Open):
    measured_on: str
    scope: str
    headline: Headline


class DistillReport(Envelope):
    """``edgekit distill --json`` (the body is the artifact's ``checks.distill``)."""

    schema_tag: Literal["edgekit.distill/1"] = Field(alias="schema")
    kind: Literal["distill"]
    mode: str
    method: str
    teacher: dict[str, Any]
    student: dict[str, Any]
    data: dict[str, Any]
    training: dict[str, Any]
    fidelity: DistillFidelity
    latency: Latency
    gate: dict[str, Any]


class PolicyRun(_Open):
    ref: str
    episodes: int
    successes: int
    success_rate: float
    success_ci95: list[float]
    return_mean: float
    tick_p50_ms: float | None


class EvalReport(Envelope):
    """``edgekit eval --json``: closed-loop success of the candidate and its teacher."""

    schema_tag: Literal["edgekit.eval/1"] = Field(alias="schema")
    kind: Literal["eval"]
    report: Literal["edgekit.eval"]
    task: dict[str, Any]
    episodes: int
    seed: int
    candidate: PolicyRun
    teacher: PolicyRun | None
    success_ratio: float | None
    gate: dict[str, Any]
    notes: list[str] = Field(default_factory=list)  # e.g. why there is no teacher


class ExportReport(Envelope):
    """``edgekit export --json``: ONNX (``out``, ``manifest``), QNN or TensorRT (their
    reports, the artifact's ``checks.qnn`` / ``checks.tensorrt``)."""

    schema_tag: Literal["edgekit.export/1"] = Field(alias="schema")
    kind: Literal["export"]
    format: Literal["onnx", "qnn", "tensorrt"]
    out: str


# --- run --------------------------------------------------------------------------------------


class RecipeInfo(_Open):
    name: str
    path: str | None
    sha256: str
    schema_version: int


class StageEntry(_Open):
    index: int
    stage: str
    status: Literal["ran", "cached", "failed", "skipped"]
    artifact: str | None
    seconds: float
    summary: str
    report: dict[str, Any] = Field(description="the stage's own report")


class TargetEntry(_Open):
    budget_ms: float | None
    gate: str | None
    evidence: Literal["measured", "estimated"] | None
    artifact: str
    stats_ms: LatencyStats | None
    samples_ms: list[float] | None
    deadline_misses: int | None
    estimated_ms: float | None


class RunReport(Envelope):
    """``edgekit run``'s ``report.json`` (and ``--json``)."""

    schema_tag: Literal["edgekit.run/1"] = Field(alias="schema")
    kind: Literal["run"]
    recipe: RecipeInfo
    model: str
    data: str | None
    out: str
    stages: list[StageEntry]
    targets: dict[str, TargetEntry]
    exit_code: int
    error: str | None
    seconds: float
    edgekit: str = Field(description="= edgekit_version (kept for older readers)")


MODELS: dict[str, type[BaseModel]] = {
    "bench": BenchReport,
    "quantize": QuantizeReport,
    "distill": DistillReport,
    "eval": EvalReport,
    "export": ExportReport,
    "run": RunReport,
}
