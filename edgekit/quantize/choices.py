"""A quantization choice (what stays in float) measured on the whole tick, for the report.

Every choice the mixed search tries, and the one ``--keep-float`` makes, is written as one
:class:`Choice`: what was kept in float (a whole network, ``expert``, or single layers,
``prefix/MatMul_12``), the share of the weights that stays float, the whole-tick figure the
budget holds (worst relative L2 vs FP32, or an agreement), whether it met the budget, and each
network's own output error on its held-out inputs (fed FP32's inputs, so one network's error is
not mixed with another's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgekit.gates import ErrorBudget
from edgekit.loop import Arrays
from edgekit.loop.fidelity import FidelityRow, compare_runs, metric_value, worst_error
from edgekit.quantize.int8 import PreparedNetwork

if TYPE_CHECKING:
    from edgekit.quantize.context import Context


@dataclass
class Choice:
    label: str
    kept_float: list[str]
    float_weights: float  # fraction of the quantizable weights kept in float
    metric: str
    value: float | None
    met: bool | None  # None: no budget
    network_rel_l2: dict[str, float] = field(default_factory=dict)
    rows: list[FidelityRow] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "choice": self.label,
            "kept_float": self.kept_float,
            "float_weights": self.float_weights,
            "metric": self.metric,
            "value": self.value,
            "worst_rel_l2": worst_error(self.rows),
            "met": self.met,
            "network_rel_l2": self.network_rel_l2,
        }


def kept_names(networks: list[str], layers: list[tuple[str, str]]) -> list[str]:
    """The report's ``kept_float``: whole networks by name, single layers as ``net/node``."""
    return [*networks, *(f"{n}/{d}" for n, d in layers if n not in networks)]


def label_of(networks: list[str], layers: list[tuple[str, str]], all_nets: list[str]) -> str:
    quantized = [n for n in all_nets if n not in networks]
    parts = [f"INT8 {' + '.join(quantized)}"] if quantized else []
    if networks:
        parts.append(f"float {' + '.join(networks)}")
    if layers:
        parts.append(f"{len(layers)} layer(s) float")
    if not networks and not layers:
        return "all INT8"
    return ", ".join(parts)


class Measurer:
    """Measures choices: whole tick (``ctx.fidelity``) and each network on its held-out inputs
    (FP32's outputs computed once)."""

    def __init__(self, ctx: Context, nets: dict[str, PreparedNetwork]) -> None:
        self.ctx = ctx
        self.nets = nets
        self.total = sum(p.weight_total() for p in nets.values()) or 1
        self._ref: dict[str, list[Arrays]] = {}
        self.tried: list[Choice] = []

    def feeds(self, name: str) -> list[Arrays]:
        return self.ctx.holdout_feeds.get(name) or self.nets[name].feeds

    def network_errors(self, runtime: Any) -> dict[str, float]:
        out = {}
        for name in self.nets:
            feeds = self.feeds(name)
            if not feeds:
                continue
            if name not in self._ref:
                self._ref[name] = [self.ctx.fp32.run(name, f) for f in feeds]
            got = [runtime.run(name, f) for f in feeds]
            out[name] = worst_error(compare_runs("network", name, self._ref[name], got))
        return out

    def float_share(self, networks: list[str], layers: list[tuple[str, str]]) -> float:
        kept = sum(self.nets[n].weight_total() for n in networks if n in self.nets)
        kept += sum(self.nets[n].weights.get(d, 0) for n, d in layers if n not in networks)
        return kept / self.total

    def measure(
        self,
        runtime: Any,
        networks: list[str],
        layers: list[tuple[str, str]],
        budget: ErrorBudget | None,
    ) -> Choice:
        rows = self.ctx.fidelity(runtime)
        metric = (budget.metric if budget else None) or "rel_l2"
        value = metric_value(rows, metric)
        choice = Choice(
            label_of(networks, layers, list(self.nets)),
            kept_names(networks, layers),
            self.float_share(networks, layers),
            metric,
            value,
            None if budget is None else budget.met(value),
            self.network_errors(runtime),
            rows,
        )
        self.tried.append(choice)
        return choice
