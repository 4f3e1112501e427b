"""Typed settings of ``edgekit quantize``: one class per method, validated before any work.

``QuantizeConfig`` is the union of the three, told apart by ``precision`` (default int8), so a
recipe stage ``{stage: quantize, precision: int4, block_size: 64}`` and
``Int4Config(block_size=64)`` are the same object.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter, ValidationError

from edgekit.config import Budget, VerbConfig, first_error
from edgekit.errors import BadInputError
from edgekit.validate import MAX_TICKS

Method = Literal["minmax", "percentile", "entropy"]


class _QuantizeBase(VerbConfig):
    """What every precision shares.

    Attributes:
        target: a target profile name (cpu, jetson-*, qcs6490, ...).
        max_error: the fidelity gate (exit 1), an :class:`~edgekit.gates.ErrorBudget`: a
            number is the worst whole-tick relative L2 of the float outputs vs FP32 (at most);
            ``token_agreement=0.95`` / ``choice_agreement=0.9`` the fraction of decoded tokens
            / reranker choices equal to FP32's on the held-out ticks (at least).
        holdout: fraction of the calibration data held out to measure fidelity.
        max_feeds: calibration inputs kept per network (evenly subsampled).
        latency_ticks: whole ticks timed for the FP32-vs-quantized latency check (0: skip).
        seed: the calibration split and the synthetic data derive from it.
    """

    stage: Literal["quantize"] = "quantize"
    target: str = "cpu"
    max_error: Budget | None = None
    holdout: float = Field(default=0.25, gt=0, lt=1)
    max_feeds: int = Field(default=64, ge=1)
    latency_ticks: int = Field(default=30, ge=0, le=MAX_TICKS)
    seed: int = 0


KEEP_FLOAT_DOC = (
    "networks kept whole in float (FP32) while the others are quantized, e.g. a VLA's action "
    "expert (with its flow-time embedding): names checked against the model's networks"
)


class Int8Config(_QuantizeBase):
    """Static post-training INT8 (weights and activations), in the target's scheme.

    ``method``: how activation ranges are calibrated: minmax, percentile or entropy.
    ``keep_float``: networks kept whole in float (no Q/DQ in them), the others INT8.
    ``runtime``: ``ort`` (Q/DQ ONNX for onnxruntime, the default) or ``openvino`` (CPU targets:
    NNCF on the OpenVINO model, OpenVINO IR; see :mod:`edgekit.quantize.openvino`)."""

    precision: Literal["int8"] = "int8"
    method: Method = "minmax"
    keep_float: list[str] = Field(default_factory=list, description=KEEP_FLOAT_DOC)
    runtime: Literal["ort", "openvino"] = "ort"


class Int4Config(_QuantizeBase):
    """Weight-only INT4 in blocks (MatMulNBits on CPU, Q/DQ for TensorRT).

    ``block_size``: weights per scale; ``symmetric``: no zero points."""

    precision: Literal["int4"] = "int4"
    block_size: Literal[32, 64, 128] = 32
    symmetric: bool = True


class MixedConfig(_QuantizeBase):
    """INT8 with the most sensitive parts kept in float until ``max_error`` is met (on the
    Hexagon HTP: the activation width the budget needs); any budget metric works.

    The choices tried, in order: everything INT8; one whole iterated network in float (a VLA's
    action expert, a denoiser: see :mod:`edgekit.quantize.mixed`); the fewest most sensitive
    layers in float. ``keep_float``: networks kept in float whatever the search finds."""

    precision: Literal["mixed"] = "mixed"
    method: Method = "minmax"
    max_error: Budget  # the budget the search works to: required
    keep_float: list[str] = Field(default_factory=list, description=KEEP_FLOAT_DOC)


def _precision(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("precision", "int8"))
    return getattr(value, "precision", None)


QuantizeConfig = Annotated[
    Annotated[Int8Config, Tag("int8")]
    | Annotated[Int4Config, Tag("int4")]
    | Annotated[MixedConfig, Tag("mixed")],
    Discriminator(_precision),
]

_ADAPTER: TypeAdapter[Int8Config | Int4Config | MixedConfig] = TypeAdapter(QuantizeConfig)


def method(config: Int8Config | Int4Config | MixedConfig) -> str:
    """The activation calibration method (INT4 is weight-only: it has none)."""
    return config.method if not isinstance(config, Int4Config) else "minmax"


def check_keep_float(config: Int8Config | Int4Config | MixedConfig, networks: list[str]) -> None:
    """``keep_float`` names networks the model has, and leaves at least one to quantize.

    Raises:
        BadInputError: one line naming the model's networks (exit 2).
    """
    keep = getattr(config, "keep_float", [])
    unknown = [n for n in keep if n not in networks]
    if unknown:
        raise BadInputError(
            f"--keep-float {unknown[0]!r}: the model has no such network (its networks: "
            f"{', '.join(networks)})"
        )
    if keep and set(networks) <= set(keep):
        raise BadInputError(
            f"--keep-float {' '.join(dict.fromkeys(keep))}: that is every network of the model, "
            "nothing left to quantize"
        )


def quantize_config(**options: Any) -> Int8Config | Int4Config | MixedConfig:
    """The config class ``precision`` names, built from the given options (None: default).

    An option the method does not have is refused (``--block-size`` with int8), and a bad value
    names its option: ``--method 'mse': expected minmax, percentile or entropy``."""
    given = {k: v for k, v in options.items() if v is not None}
    if given.get("precision", "int8") not in ("int8", "int4", "mixed"):
        raise BadInputError(
            f"--precision {given['precision']!r}: expected one of int8, int4, mixed"
        )
    if given.get("precision") == "mixed" and "max_error" not in given:
        raise BadInputError("--precision mixed needs --max-error (the budget it searches for)")
    try:
        return _ADAPTER.validate_python(given)
    except ValidationError as e:
        line = first_error(e, option_style=True)
        if line.split(":")[1].strip() == "unknown key":
            opt = line.split(":")[0]
            line = f"{opt} does not apply to --precision {given.get('precision', 'int8')}"
        raise BadInputError(line) from None
