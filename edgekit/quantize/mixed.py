"""Mixed precision to an error budget: keep the most sensitive parts in float.

The choices, tried in this order, the first that meets the budget (on the whole tick) wins:

1. Everything INT8.
2. One whole network in float, for models with several networks: each network the tick calls
   more than once (a VLA's action expert with its flow-time embedding, a diffusion policy's
   denoiser, a world model's imagination step) that holds at most half of the quantizable
   weights, the most-called first, then the smallest. Its error compounds over its K calls,
   and a network kept whole runs its FP32 kernels with no INT8/float boundaries inside it,
   while the backbone (called once) keeps the INT8 speed. Tried before the per-layer ranking,
   which it then saves.
3. Per layer: sensitivity (quantize one weighted layer at a time, the rest float, and measure
   its network's output error on held-out inputs), then keep the k most sensitive layers in
   float, everything else INT8, with the smallest k whose whole-tick error meets the budget
   (binary search; the error falls as k grows, and the result is checked directly). The
   budget may be an agreement instead (``token_agreement=0.95``).
If no k short of keeping every layer meets it, the budget cannot be met: exit 1. Networks named
in ``keep_float`` stay float in every choice. Every choice tried is reported
(:mod:`edgekit.quantize.choices`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit import progress
from edgekit.errors import GateFailed
from edgekit.gates import METRIC_NAMES, ErrorBudget
from edgekit.loop.fidelity import network_error
from edgekit.quantize.choices import Choice, Measurer, kept_names
from edgekit.quantize.config import method
from edgekit.quantize.int8 import PreparedNetwork, quantize_network
from edgekit.runtimes import OrtRuntime
from edgekit.targets.schemes import Scheme

if TYPE_CHECKING:
    from edgekit.quantize.context import Context

Layer = tuple[str, str]  # (network, node)
MAX_NETWORK_SHARE = 0.5  # a network candidate holds at most this share of the weights


@dataclass
class SearchResult:
    ranking: list[tuple[Layer, float]]  # most sensitive first (empty: not ranked)
    keep: list[Layer]
    keep_networks: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    why: str = ""

    def keep_for(self, net: PreparedNetwork) -> set[str]:
        if net.name in self.keep_networks:
            return set(net.candidates)
        return {node for n, node in self.keep if n == net.name}

    def kept_names(self) -> list[str]:
        return kept_names(self.keep_networks, self.keep)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitivity": [{"layer": f"{n}/{d}", "rel_l2": e} for (n, d), e in self.ranking],
            "kept_float": self.kept_names(),
            "why": self.why,
        }


def network_candidates(nets: dict[str, PreparedNetwork], ctx: Context) -> list[str]:
    """Networks worth trying whole in float (see the module doc), in the order tried."""
    if len(nets) < 2 or ctx.program is None:
        return []
    calls = ctx.program.calls_per_tick()
    total = sum(p.weight_total() for p in nets.values()) or 1
    share = {n: p.weight_total() / total for n, p in nets.items()}
    picked = [n for n in nets if calls.get(n, 0) > 1 and share[n] <= MAX_NETWORK_SHARE]
    return sorted(picked, key=lambda n: (-calls[n], share[n]))


def search(
    nets: dict[str, PreparedNetwork],
    scheme: Scheme,
    ctx: Context,
    budget: ErrorBudget,
    keep_networks: list[str] | None = None,
) -> SearchResult:
    forced = list(dict.fromkeys(keep_networks or []))
    quant = {n: p for n, p in nets.items() if n not in forced}
    measurer = Measurer(ctx, nets)
    result = SearchResult([], [], forced, measurer.tried)
    metric = budget.metric or "rel_l2"
    shown_metric = METRIC_NAMES.get(metric, metric)
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        work = Path(tmp)

        def meets(floats: list[str], layers: list[Layer], tag: str, task: Any) -> bool:
            keep = set(layers)
            files = {
                n: quantize_network(
                    p,
                    work / f"{n}.{tag}.onnx",
                    scheme,
                    method(ctx.config),
                    set(p.candidates) if n in floats else {d for m, d in keep if m == n},
                )
                for n, p in nets.items()
            }
            rt = OrtRuntime(files, threads=ctx.threads, optimize=scheme.ort_kernels)
            c = measurer.measure(rt, floats, layers, budget)
            shown = "n/a" if c.value is None else f"{c.value:.4g}"
            task.advance(info=f"last: {c.label}, {shown_metric} {shown}")
            return bool(c.met)

        first = network_candidates(quant, ctx)
        with progress.task(f"trying {1 + len(first)} choice(s) before ranking layers") as t:
            if meets(forced, [], "all", t):
                result.why = "everything INT8 (but --keep-float) meets the budget"
                return result
            for net in first:
                if meets([*forced, net], [], f"net-{net}", t):
                    result.keep_networks = [*forced, net]
                    result.why = (
                        f"all INT8 missed the budget; {net} (called "
                        f"{ctx.program.calls_per_tick()[net] if ctx.program else '?'}x per tick) "
                        "kept whole in float meets it"
                    )
                    return result

        result.ranking = _sensitivity(quant, scheme, ctx, work)
        layers = [layer for layer, _ in result.ranking]
        with progress.task(f"searching the layers kept in float (of {len(layers)})") as t:
            lo, hi = 1, len(layers) - 1  # keeping every layer is not quantizing at all
            best = None
            while lo <= hi:
                mid = (lo + hi) // 2
                if meets(forced, layers[:mid], f"k{mid}", t):
                    best, hi = mid, mid - 1
                else:
                    lo = mid + 1
            if best is None:
                seen = [c.value for c in measurer.tried if c.value is not None]
                pick = max if budget.minimum else min
                shown = f"{pick(seen):.4f}" if seen else "n/a"
                raise GateFailed(
                    f"--max-error {budget}: not met even with {len(layers) - 1} of {len(layers)} "
                    f"weighted layers kept in float (best {shown_metric} {shown}); nothing "
                    "written"
                )
            result.keep = layers[:best]
            missed = "all INT8" + (f" and float {', '.join(first)}" if first else "")
            result.why = (
                f"{missed} missed the budget; the {best} most sensitive layer(s) kept in float "
                "are the fewest that meet it"
            )
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
