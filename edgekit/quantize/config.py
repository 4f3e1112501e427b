"""Typed settings of ``edgekit quantize``, validated before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgekit.errors import BadInputError
from edgekit.validate import tick_count

PRECISIONS = ("int8", "int4", "mixed")
METHODS = ("minmax", "percentile", "entropy")
BLOCK_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class QuantizeConfig:
    """What to quantize to, for which target, and how.

    Attributes:
        precision: int8 (static PTQ), int4 (weight-only), or mixed (INT8 with the most
            sensitive layers kept in float until ``max_error`` is met).
        target: a target profile name (cpu, jetson-*, qcs6490, ...).
        method: activation calibration: minmax, percentile or entropy.
        block_size: INT4 block size.
        symmetric: INT4 symmetric (True) or asymmetric weights.
        max_error: relative-L2 error budget on the whole tick's outputs (a gate: exit 1).
        holdout: fraction of the calibration data held out to measure fidelity.
        max_feeds: calibration inputs kept per network (evenly subsampled).
        latency_ticks: whole ticks timed for the FP32-vs-quantized latency check (0: skip).
    """

    precision: str = "int8"
    target: str = "cpu"
    method: str = "minmax"
    block_size: int = 32
    symmetric: bool = True
    max_error: float | None = None
    holdout: float = 0.25
    max_feeds: int = 64
    latency_ticks: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BadInputError(f"--precision {self.precision!r}: expected one of {PRECISIONS}")
        if self.method not in METHODS:
            raise BadInputError(f"--method {self.method!r}: expected one of {METHODS}")
        if self.block_size not in BLOCK_SIZES:
            raise BadInputError(f"--block-size {self.block_size}: expected one of {BLOCK_SIZES}")
        if self.max_error is not None and not self.max_error > 0:
            raise BadInputError(f"--max-error must be > 0 (got {self.max_error})")
        if self.precision == "mixed" and self.max_error is None:
            raise BadInputError("--precision mixed needs --max-error (the budget it searches for)")
        tick_count(self.latency_ticks, "--latency-ticks")
        if not 0 < self.holdout < 1:
            raise BadInputError(f"holdout fraction must be in (0, 1) (got {self.holdout})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
