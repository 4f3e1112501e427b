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

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from edgekit.bench.config import BenchConfig
from edgekit.distill.config import DistillConfig
from edgekit.errors import BadInputError
from edgekit.eval.config import EvalConfig
from edgekit.export.config import ExportConfig, OnnxExport, QnnExport, TensorRTExport
from edgekit.quantize.config import Int4Config, Int8Config, MixedConfig, QuantizeConfig

SCHEMA_VERSION = 1
STAGE_ORDER = ("distill", "quantize", "export", "bench", "eval")
GATE_STATS = ("p50", "p90", "p99", "max", "mean")


class RecipeError(BadInputError):
    """A recipe file that cannot be used: bad YAML, unknown key, wrong type, bad value."""


class _Strict(BaseModel):
    # allow_inf_nan: a budget or loop rate of .nan/.inf passes gt=0 checks (or no check at all)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# A stage is the verb's own config class: ``{stage: quantize, precision: int4, ...}`` is an
# Int4Config, so a recipe takes every option the command takes, checked the same way.
DistillStage = DistillConfig
QuantizeStage = Int8Config | Int4Config | MixedConfig
ExportStage = OnnxExport | QnnExport | TensorRTExport
BenchStage = BenchConfig
EvalStage = EvalConfig


def _stage_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        tag = value.get("stage")
        return tag if isinstance(tag, str) else None
    return getattr(value, "stage", None)


Stage = Annotated[
    Annotated[DistillConfig, Tag("distill")]
    | Annotated[QuantizeConfig, Tag("quantize")]
    | Annotated[ExportConfig, Tag("export")]
    | Annotated[BenchConfig, Tag("bench")]
    | Annotated[EvalConfig, Tag("eval")],
    Discriminator(_stage_tag),
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
            if isinstance(s, Int8Config | Int4Config | MixedConfig):
                _check_target(s.target, f"{where}.target")
            if isinstance(s, BenchConfig):
                owned = s.model_fields_set & {"target", "hz", "budget_ms"}
                if owned:
                    raise ValueError(
                        f"{where}.{sorted(owned)[0]}: a recipe sets each target's budget under "
                        "targets: (e.g. targets: {cpu: {budget_ms: 16}})"
                    )
            if isinstance(s, OnnxExport | QnnExport | TensorRTExport):
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
        """The model reference to load: relative paths (a ``file.py:factory``'s file too)
        resolved from the recipe's folder, and a zoo reference's preset replaced by ``preset``.

        A factory file that does not exist is a :class:`RecipeError` naming the resolved path.
        """
        ref = self.model
        if ref.startswith("zoo:"):
            if preset:
                kind = ref.split(":")[1]
                _check_preset(kind, preset)
                ref = f"zoo:{kind}:{preset}"
            return ref
        if preset:
            raise RecipeError(f"model: --preset applies to zoo references, not {ref!r}")
        target, sep, factory = ref.rpartition(":")
        if sep and target.endswith(".py"):  # FILE.py:factory (pkg.module:factory as is)
            path = Path(_resolve(target, recipe_dir))
            if not path.is_file():
                raise RecipeError(
                    f"model: factory file {path} not found (from {ref!r}; a relative path "
                    "starts at the recipe's folder)"
                )
            return f"{path}:{factory}"
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
    quantized = next((p for p in before if p.stage == "quantize"), None)
    if isinstance(s, OnnxExport):
        if previous:
            raise ValueError(
                f"{where}.format: onnx exports a model; the {previous[-1]} stage already wrote "
                "ONNX (drop this stage, or export to qnn/tensorrt)"
            )
        return
    family = "qualcomm" if s.format == "qnn" else "jetson"
    if s.target is None:
        raise ValueError(f"{where}.target: missing; {s.format} export needs a {family} target")
    _check_target(s.target, f"{where}.target")
    if get_target(s.target).export_format != s.format:
        raise ValueError(f"{where}.target: {s.target!r} is not a {family} target")
    if isinstance(s, QnnExport) and (
        quantized is None or get_target(quantized.target).family != "qualcomm"
    ):
        raise ValueError(
            f"{where}: qnn export needs a quantize stage for a Qualcomm target before it"
        )
    if (
        isinstance(s, TensorRTExport)
        and s.precision == "int8"
        and (quantized is None or get_target(quantized.target).family != "jetson")
    ):
        raise ValueError(
            f"{where}.precision: int8 TensorRT needs a quantize stage for a Jetson target "
            "(explicit Q/DQ) before it"
        )
