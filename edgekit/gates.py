"""One gate protocol for every verb: results carry their gates; the caller decides.

The library never raises because a gate missed: ``quantize``, ``distill``, ``eval`` and
``bench`` return a result whose ``gates`` say what was held to which limit, measured how, and
whether it passed (an artifact that misses its gate is not written: ``result.written``). The
CLI turns ``result.passed`` into exit code 1 (:func:`edgekit.cli.guard.finish`); a recipe run
collects the same gates into its report, JUnit and Markdown.

    r = edgekit.quantize("zoo:vla:tiny", "out/vla-int8", Int8Config(max_error=0.05), "calib.npz")
    if not r.passed:
        print(r.failed[0].message)  # worst whole-tick rel-L2 0.071 > 0.05 ...

A fidelity budget is one :class:`ErrorBudget` everywhere (``--max-error``, a recipe stage's
``max_error``, ``Int8Config(max_error=...)``): a plain number holds the verb's error metric
(whole-tick relative L2) at or under it; ``token_agreement=0.95`` / ``choice_agreement=0.9``
hold the agreement of a tick's integer outputs (decoded tokens, a reranker's choice) with the
reference at or over it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped"]

METRIC_NAMES = {
    "rel_l2": "whole-tick rel-L2",
    "token_agreement": "token agreement",
    "choice_agreement": "choice agreement",
    "action_range_mean_abs": "mean-abs action error (fraction of the action range)",
    "success_ratio": "success ratio to the teacher",
}


AGREEMENTS = ("token_agreement", "choice_agreement")  # lower bounds, in (0, 1]
BUDGET_METRICS = ("rel_l2", *AGREEMENTS)


@dataclass(frozen=True)
class ErrorBudget:
    """A fidelity budget: ``limit`` on ``metric`` (None: the verb's own error metric: whole-tick
    relative L2; for step distillation, the action error). Errors are upper bounds, agreements
    (fractions of equal tokens / choices) lower bounds. Written ``0.05`` or
    ``token_agreement=0.95`` (:meth:`parse`), and read back the same way (``str``)."""

    limit: float
    metric: str | None = None

    @classmethod
    def parse(cls, value: object) -> ErrorBudget:
        """From a number, ``"0.05"``, ``"METRIC=LIMIT"`` or ``{"metric": ..., "limit": ...}``.

        Raises:
            ValueError: a malformed budget, an unknown metric; ``BudgetRangeError`` for a limit
                out of its range (> 0; agreements <= 1).
        """
        if isinstance(value, ErrorBudget):
            return value
        metric: object = None
        if isinstance(value, dict) and set(value) <= {"metric", "limit"}:
            metric, value = value.get("metric"), value.get("limit")
        elif isinstance(value, str) and "=" in value:
            metric, _, value = (p.strip() for p in value.partition("="))
        if metric is not None and metric not in BUDGET_METRICS:
            raise ValueError(f"unknown metric {metric!r}")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("not a number")
        try:
            limit = float(value)
        except ValueError:
            raise ValueError("not a number") from None
        if not limit > 0 or limit == float("inf"):
            raise BudgetRangeError("gt", 0)
        if metric in AGREEMENTS and limit > 1:
            raise BudgetRangeError("le", 1)
        return cls(limit, None if metric is None else str(metric))

    @property
    def minimum(self) -> bool:
        """An agreement: the measured value must be at least the limit."""
        return self.metric in AGREEMENTS

    def met(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.limit if self.minimum else value <= self.limit

    def __str__(self) -> str:
        return f"{self.limit:g}" if self.metric is None else f"{self.metric}={self.limit:g}"

    def to_json(self) -> float | str:
        """A plain number for the verb's own error metric (as it always read), else text."""
        return self.limit if self.metric is None else str(self)

    def gate(
        self, stage: str, value: float | None, method: str, *, default: str = "rel_l2",
        why: str = "",
    ) -> Gate:  # fmt: skip
        """The fidelity gate of this budget on the measured ``value`` (None: not measured,
        which fails; ``why`` says so). ``default``: the verb's own error metric."""
        metric = self.metric or default
        label = METRIC_NAMES.get(metric, metric)
        shown = "n/a" if value is None else f"{value:.4g}"
        sign = "<" if self.minimum else ">"
        message = f"{label} {shown} {sign} --max-error {self}" + (f" ({why})" if why else "")
        if self.minimum:
            name = f"{stage}: {label} >= {self.limit:g}"
            return lower_bound(stage, "fidelity", metric, value, self.limit, method, name=name,
                               message=message)  # fmt: skip
        return upper_bound(stage, "fidelity", metric, value, self.limit, method, message=message)


class BudgetRangeError(ValueError):
    """An error budget's limit out of range: ``bound`` is ``gt`` or ``le`` ``edge``."""

    def __init__(self, bound: str, edge: int) -> None:
        super().__init__(f"must be {'>' if bound == 'gt' else '<='} {edge:g}")
        self.bound, self.edge = bound, edge


@dataclass(frozen=True)
class Gate:
    """One limit one figure was held to.

    ``kind``: latency, fidelity or task; ``evidence``: measured or estimated (None: skipped);
    ``method``: how the figure was obtained; ``message``: why it failed, or why it was skipped
    (empty when it passed); ``seconds``: the time of the work behind it, where a run timed it
    (JUnit's ``time``; None: not timed). Its dict is the report family's gate record
    (:class:`edgekit.reports.models.GateRecord`).
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
    seconds: float | None = None

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

    @property
    def warnings(self) -> list[str]:
        """What a reader should know although no gate failed (a compressed variant slower
        than its reference...): printed before the verdict, and in the report."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """The report: the family's envelope (:mod:`edgekit.reports.envelope`), then the
        verb's own keys."""
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
