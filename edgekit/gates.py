"""One gate protocol for every verb: results carry their gates; the caller decides.

The library never raises because a gate missed: ``quantize``, ``distill``, ``eval`` and
``bench`` return a result whose ``gates`` say what was held to which limit, measured how, and
whether it passed (an artifact that misses its gate is not written: ``result.written``). The
CLI turns ``result.passed`` into exit code 1 (:func:`edgekit.cli.guard.finish`); a recipe run
collects the same gates into its report, JUnit and Markdown.

    r = edgekit.quantize("zoo:vla:tiny", "out/vla-int8", Int8Config(max_error=0.05), "calib.npz")
    if not r.passed:
        print(r.failed[0].message)  # worst whole-tick rel-L2 0.071 > 0.05 ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped"]

METRIC_NAMES = {
    "rel_l2": "whole-tick rel-L2",
    "action_range_mean_abs": "mean-abs action error (fraction of the action range)",
    "success_ratio": "success ratio to the teacher",
}


@dataclass(frozen=True)
class Gate:
    """One limit one figure was held to.

    ``kind``: latency, fidelity or task; ``evidence``: measured or estimated (None: skipped);
    ``method``: how the figure was obtained; ``message``: why it failed (empty when it passed).
    """

    id: str
    kind: str
    name: str
    stage: str
    metric: str | None
    value: float | None
    limit: float | None
    unit: str
    status: Status
    evidence: str | None
    method: str
    message: str = ""
    target: str | None = None

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Gated:
    """Mixin of every verb's result: ``passed`` when none of its ``gates`` failed."""

    @property
    def gates(self) -> list[Gate]:
        raise NotImplementedError

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]


def upper_bound(
    stage: str,
    kind: str,
    metric: str,
    value: float | None,
    limit: float,
    method: str,
    *,
    unit: str = "ratio",
    evidence: str = "measured",
    target: str | None = None,
    name: str | None = None,
    message: str | None = None,
) -> Gate:
    """A gate that holds ``value`` at or under ``limit`` (a missing value fails)."""
    ok = value is not None and value <= limit
    label = METRIC_NAMES.get(metric, metric)
    shown = "n/a" if value is None else f"{value:.4g}"
    return Gate(
        id=f"{kind}.{stage}" if target is None else f"{kind}.{target}",
        kind=kind,
        name=name or f"{stage}: {label} <= {limit:g}",
        stage=stage,
        metric=metric,
        value=value,
        limit=limit,
        unit=unit,
        status="passed" if ok else "failed",
        evidence=evidence,
        method=method,
        message="" if ok else (message or f"{metric} {shown} > {limit:g}"),
        target=target,
    )


def lower_bound(
    stage: str, kind: str, metric: str, value: float | None, limit: float, method: str,
    *, name: str, message: str,
) -> Gate:  # fmt: skip
    """A gate that holds ``value`` at or over ``limit`` (a missing value fails)."""
    ok = value is not None and value >= limit
    return Gate(
        id=f"{kind}.{stage}", kind=kind, name=name, stage=stage, metric=metric, value=value,
        limit=limit, unit="ratio", status="passed" if ok else "failed", evidence="measured",
        method=method, message="" if ok else message,
    )  # fmt: skip
