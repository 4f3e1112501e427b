"""Mixed precision to an error budget: keep the most sensitive layers in float.

1. Sensitivity: quantize one weighted layer at a time (the rest float) and measure its
   network's output error on held-out inputs.
2. Search: keep the k most sensitive layers in float, everything else INT8, and find the
   smallest k whose whole-tick error meets the budget (binary search; the error falls as k
   grows, and the result is checked directly). The budget may be an agreement instead
   (``token_agreement=0.95``): the smallest k whose decoded tokens agree that often.
If no k short of keeping every layer meets it, the budget cannot be met: exit 1.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit import progress
from edgekit.errors import GateFailed
from edgekit.gates import METRIC_NAMES, ErrorBudget
from edgekit.loop.fidelity import metric_value, network_error
from edgekit.quantize.config import method
from edgekit.quantize.int8 import PreparedNetwork, quantize_network
from edgekit.runtimes import OrtRuntime
from edgekit.targets.schemes import Scheme

if TYPE_CHECKING:
    from edgekit.quantize.context import Context

Layer = tuple[str, str]  # (network, node)


@dataclass
class SearchResult:
    ranking: list[tuple[Layer, float]]  # most sensitive first
    keep: list[Layer]
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def keep_for(self, network: str) -> set[str]:
        return {node for net, node in self.keep if net == network}

    def kept_names(self) -> list[str]:
        return [f"{net}/{node}" for net, node in self.keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitivity": [{"layer": f"{n}/{d}", "rel_l2": e} for (n, d), e in self.ranking],
            "kept_float": self.kept_names(),
            "evaluations": self.evaluations,
        }


def search(
    nets: dict[str, PreparedNetwork], scheme: Scheme, ctx: Context, budget: ErrorBudget
) -> SearchResult:
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        work = Path(tmp)
        ranking = _sensitivity(nets, scheme, ctx, work)
        layers = [layer for layer, _ in ranking]
        result = SearchResult(ranking, [])

        metric = budget.metric or "rel_l2"
        key = "worst_rel_l2" if metric == "rel_l2" else metric
        with progress.task(f"searching the layers kept in float (of {len(layers)})") as t:

            def meets(k: int) -> bool:
                keep = set(layers[:k])
                files = {
                    n: quantize_network(
                        p,
                        work / f"{n}.k{k}.onnx",
                        scheme,
                        method(ctx.config),
                        {node for net, node in keep if net == n},
                    )
                    for n, p in nets.items()
                }
                rt = OrtRuntime(files, threads=ctx.threads, optimize=scheme.ort_kernels)
                value = metric_value(ctx.fidelity(rt), metric)
                result.evaluations.append({"kept_float": k, key: value})
                shown = "n/a" if value is None else f"{value:.4g}"
                t.advance(info=f"last: {k} kept, {METRIC_NAMES.get(metric, metric)} {shown}")
                return budget.met(value)

            if meets(0):
                return result
            lo, hi = 1, len(layers) - 1  # keeping every layer is not quantizing at all
            best = None
            while lo <= hi:
                mid = (lo + hi) // 2
                if meets(mid):
                    best, hi = mid, mid - 1
                else:
                    lo = mid + 1
            if best is None:
                seen = [e[key] for e in result.evaluations if e[key] is not None]
                pick = max if budget.minimum else min
                shown = f"{pick(seen):.4f}" if seen else "n/a"
                raise GateFailed(
                    f"--max-error {budget}: not met even with {len(layers) - 1} of {len(layers)} "
                    f"weighted layers kept in float (best {METRIC_NAMES.get(metric, metric)} "
                    f"{shown}); nothing written"
                )
            result.keep = layers[:best]
            return result


def _sensitivity(
    nets: dict[str, PreparedNetwork], scheme: Scheme, ctx: Context, work: Path
) -> list[tuple[Layer, float]]:
    scores: list[tuple[Layer, float]] = []
    total = sum(len(net.candidates) for net in nets.values())
    with progress.task("ranking layers by sensitivity", total=total) as task:
        for name, net in nets.items():
            feeds = ctx.holdout_feeds.get(name) or net.feeds
            for node in net.candidates:
                others = set(net.candidates) - {node}
                path = quantize_network(
                    net, work / f"{name}.sens.onnx", scheme, method(ctx.config), others
                )
                rt = OrtRuntime({name: path}, threads=ctx.threads, optimize=scheme.ort_kernels)
                scores.append(((name, node), network_error(ctx.fp32, rt, name, feeds)))
                task.advance()
    return sorted(scores, key=lambda s: s[1], reverse=True)
