"""The recipe file: one strict, versioned YAML document per deployment.

    schema_version: 1
    name: humanoid-qcs6490
    model: zoo:humanoid            # any model reference edgekit takes
    data: synthetic                # observations for distill/quantize: .npz, folder or synthetic
    stages:
      - stage: quantize
        precision: int8
        target: qcs6490
        max_error: 0.05            # a fidelity gate
      - stage: export
        format: qnn
        target: qcs6490
      - stage: bench
        ticks: 200
    targets:                       # one latency gate per target
      qcs6490: {budget_ms: 16}
      cpu: {budget_ms: 16}

Every key is checked before any work starts: an unknown key, a wrong type, an unknown stage or
target, stages out of order or a budget <= 0 fail with their location
(``stages[2].precison: unknown key``). Relative paths (``model``, ``weights``, ``data``) are
relative to the recipe file, so a recipe runs the same from any working directory.

This module is the schema (the stage models, the recipe model and its cross-stage rules);
reading, ``--set`` overrides, error lines and writing are in :mod:`edgekit.run.recipe_file`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgekit.errors import BadInputError
from edgekit.validate import MAX_TICKS

SCHEMA_VERSION = 1
STAGE_ORDER = ("distill", "quantize", "export", "bench", "eval")
GATE_STATS = ("p50", "p90", "p99", "max", "mean")


class RecipeError(BadInputError):
    """A recipe file that cannot be used: bad YAML, unknown key, wrong type, bad value."""


class _Strict(BaseModel):
    # allow_inf_nan: a budget or loop rate of .nan/.inf passes gt=0 checks (or no check at all)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DistillStage(_Strict):
    """``edgekit distill``: a width/depth student, or a few-step student of a diffusion policy."""

    stage: Literal["distill"]
    width: float = Field(1.0, gt=0, le=1)
    depth: float = Field(1.0, gt=0, le=1)
    denoise_steps: int | None = Field(None, ge=1, le=4)
    program: str | None = None
    steps: int = Field(300, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float | None = Field(None, gt=0)
    seed: int = 0
    max_error: float | None = Field(None, gt=0)
    latency_ticks: int = Field(30, ge=0, le=MAX_TICKS)


class QuantizeStage(_Strict):
    """``edgekit quantize``: INT8 / INT4 / mixed for a target, with a fidelity gate."""

    stage: Literal["quantize"]
    precision: Literal["int8", "int4", "mixed"] = "int8"
    target: str = "cpu"
    method: Literal["minmax", "percentile", "entropy"] = "minmax"
    block_size: Literal[32, 64, 128] = 32
    symmetric: bool = True
    max_error: float | None = Field(None, gt=0)
    latency_ticks: int = Field(30, ge=0, le=MAX_TICKS)


class ExportStage(_Strict):
    """``edgekit export``: ONNX (a model), QNN context binaries or TensorRT-ready ONNX."""

    stage: Literal["export"]
    format: Literal["onnx", "qnn", "tensorrt"] = "onnx"
    target: str | None = None
    precision: Literal["fp16", "int8", "fp32"] | None = None  # tensorrt
    strict: bool = False  # qnn: a CPU fallback or fidelity miss fails the stage
    max_error: float | None = Field(None, gt=0)  # qnn: whole-tick rel-L2 vs FP32
    build: bool = False  # tensorrt: build the engines here (needs TensorRT and a GPU)


class BenchStage(_Strict):
    """``edgekit bench`` on every target of the recipe: measured here, estimated elsewhere."""

    stage: Literal["bench"]
    ticks: int = Field(200, ge=1, le=MAX_TICKS)
    warmup: int = Field(20, ge=0, le=MAX_TICKS)
    program: str | None = None
    gate: Literal["p50", "p90", "p99", "max", "mean"] = "p99"
    threads: int | None = Field(None, ge=1)
    require_measured: bool = False


class EvalStage(_Strict):
    """``edgekit eval``: closed-loop task success of the last artifact next to its teacher."""

    stage: Literal["eval"]
    env: str = "reacher"
    episodes: int = Field(20, ge=1)
    seed: int = 0
    teacher: str = "auto"
    min_success_ratio: float | None = Field(None, gt=0, le=1.5)
    program: str | None = None


Stage = Annotated[
    DistillStage | QuantizeStage | ExportStage | BenchStage | EvalStage,
    Field(discriminator="stage"),
]


class TargetBudget(_Strict):
    """A latency gate on one target: the tick budget (default: the target's at the loop rate)."""

    budget_ms: float | None = Field(None, gt=0)
    hz: float | None = Field(None, gt=0)


class Recipe(_Strict):
    """One deployment: a model, its stages in order, and the targets it must fit."""

    schema_version: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=80)
    description: str = ""
    model: str = Field(min_length=1)
    weights: str | None = None
    data: str | None = None
    stages: list[Stage] = Field(min_length=1)
    targets: dict[str, TargetBudget] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, v: dict[str, TargetBudget]) -> dict[str, TargetBudget]:
        for name in v:
            _check_target(name, f"targets.{name}")
        return v

    @model_validator(mode="after")
    def _stages_fit_together(self) -> Recipe:
        """Cross-stage rules, all in one place."""
        seen: list[str] = []
        for i, s in enumerate(self.stages):
            where = f"stages[{i}]"
            if s.stage in seen:
                raise ValueError(f"{where}.stage: {s.stage!r} appears twice")
            later = [x for x in seen if STAGE_ORDER.index(x) > STAGE_ORDER.index(s.stage)]
            if later:
                raise ValueError(
                    f"{where}.stage: {s.stage!r} must come before {later[0]!r} "
                    f"(order: {', '.join(STAGE_ORDER)})"
                )
            seen.append(s.stage)
            if isinstance(s, QuantizeStage):
                _check_target(s.target, f"{where}.target")
                if s.precision == "mixed" and s.max_error is None:
                    raise ValueError(f"{where}.max_error: precision mixed needs the error budget")
            if isinstance(s, ExportStage):
                _check_export(s, where, self.stages[:i])
            if isinstance(s, EvalStage):
                from edgekit.eval.envs import TASKS

                if s.env not in TASKS:
                    raise ValueError(
                        f"{where}.env: unknown task {s.env!r} (known: {', '.join(TASKS)})"
                    )
        needs_data = [s.stage for s in self.stages if s.stage in ("distill", "quantize")]
        if needs_data and self.data is None:
            raise ValueError(
                f"data: missing; {needs_data[0]} needs observations (an .npz file or folder, "
                "or 'synthetic' to use generated ones explicitly)"
            )
        has_bench = "bench" in seen
        if has_bench and not self.targets:
            raise ValueError("targets: missing; the bench stage needs at least one target")
        if self.targets and not has_bench:
            raise ValueError("targets: given but there is no bench stage to hold them")
        return self

    def source_ref(self, recipe_dir: Path, preset: str | None = None) -> str:
        """The model reference to load: relative paths resolved from the recipe's folder, and
        a zoo reference's preset replaced by ``preset``."""
        ref = self.model
        if ref.startswith("zoo:"):
            if preset:
                kind = ref.split(":")[1]
                _check_preset(kind, preset)
                ref = f"zoo:{kind}:{preset}"
            return ref
        if preset:
            raise RecipeError(f"model: --preset applies to zoo references, not {ref!r}")
        return _resolve(ref, recipe_dir)

    def path_for(self, field: str, recipe_dir: Path) -> str | None:
        """``data`` or ``weights`` resolved from the recipe's folder ('synthetic' as is)."""
        value = getattr(self, field)
        if value is None or value == "synthetic":
            return value
        return _resolve(value, recipe_dir)

    def stage_index(self, name: str) -> int | None:
        return next((i for i, s in enumerate(self.stages) if s.stage == name), None)


def _check_preset(kind: str, preset: str) -> None:
    """An unknown ``--preset`` fails here, before the run folder is made."""
    from edgekit.zoo import ZOO

    if kind in ZOO and preset not in ZOO.get(kind).presets:
        known = ", ".join(ZOO.get(kind).presets)
        raise RecipeError(f"--preset {preset!r}: not a preset of zoo:{kind}; known: {known}")


def _resolve(value: str, recipe_dir: Path) -> str:
    p = Path(value)
    if ":" in value and not p.exists() and not (recipe_dir / p).exists():
        return value  # a module reference (pkg.module:factory)
    return str(p if p.is_absolute() else (recipe_dir / p))


def _check_target(name: str, where: str) -> None:
    from edgekit.targets import TARGETS, get_target

    try:
        get_target(name)
    except BadInputError:
        raise ValueError(
            f"{where}: unknown target {name!r} (known: {', '.join(TARGETS)})"
        ) from None


def _check_export(s: ExportStage, where: str, before: list[Any]) -> None:
    from edgekit.targets import get_target

    previous = [p.stage for p in before]
    quantized = next((p for p in before if isinstance(p, QuantizeStage)), None)
    if s.format == "onnx":
        if previous:
            raise ValueError(
                f"{where}.format: onnx exports a model; the {previous[-1]} stage already wrote "
                "ONNX (drop this stage, or export to qnn/tensorrt)"
            )
        if s.target or s.precision or s.strict or s.max_error or s.build:
            raise ValueError(
                f"{where}: target/precision/strict/max_error/build apply to qnn/tensorrt"
            )
        return
    family = "qualcomm" if s.format == "qnn" else "jetson"
    if s.target is None:
        raise ValueError(f"{where}.target: missing; {s.format} export needs a {family} target")
    _check_target(s.target, f"{where}.target")
    if get_target(s.target).export_format != s.format:
        raise ValueError(f"{where}.target: {s.target!r} is not a {family} target")
    if s.format == "qnn":
        if s.precision is not None or s.build:
            raise ValueError(f"{where}: precision/build apply to tensorrt (qnn runs the "
                             "quantize stage's precision)")  # fmt: skip
        if quantized is None or get_target(quantized.target).family != "qualcomm":
            raise ValueError(
                f"{where}: qnn export needs a quantize stage for a Qualcomm target before it"
            )
    if s.format == "tensorrt":
        if s.strict or s.max_error is not None:
            raise ValueError(f"{where}: strict/max_error apply to qnn")
        if s.precision == "int8" and (
            quantized is None or get_target(quantized.target).family != "jetson"
        ):
            raise ValueError(
                f"{where}.precision: int8 TensorRT needs a quantize stage for a Jetson target "
                "(explicit Q/DQ) before it"
            )
