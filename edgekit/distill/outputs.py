"""Width/depth distillation: the student's networks match the teacher's outputs on the inputs
the teacher really sees.

Data: each network's inputs are captured by running the teacher's loop programs on the
calibration/recorded observations (the denoiser at every denoising step, the world model's
imagination step inside the planner...), pooled as rows. Every batch mixes half its rows with
another row (mixup) and adds Gaussian jitter at a fraction of each float input's spread; integer
and boolean inputs (tokens, masks) are taken as recorded. The teacher labels every augmented
batch itself, so the student sees the teacher's input distribution, not only the few stored
samples.

Loss per network: MSE on every float output, divided by that output's variance over the pool
(so outputs and networks of different scales weigh alike), plus a FitNets hint (Romero et al.
2015) where shapes allow: the input of the last ``nn.Linear`` of the teacher and student
networks, matched through a learned linear projection when the student's feature width
differs. Networks that share modules are trained jointly, in one optimiser.

:func:`setup` makes the student and its objective from a teacher; :func:`fidelity` compares
the exported student's whole ticks with the teacher's on onnxruntime.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill.config import DistillConfig
from edgekit.distill.students import make_student
from edgekit.distill.train import Batch, Objective
from edgekit.errors import InputSpecError
from edgekit.loader import TorchSource
from edgekit.loop import Arrays
from edgekit.models import build_program
from edgekit.spec import NetworkSpec

MAX_ROWS = 8192  # rows kept per network input pool (evenly subsampled, seeded)


def pool_feeds(
    feeds: dict[str, list[Arrays]], specs: dict[str, NetworkSpec], seed: int
) -> dict[str, dict[str, torch.Tensor]]:
    """Stack the captured feeds of every network into row pools (first axis = batch)."""
    rng = np.random.default_rng(seed)
    pools: dict[str, dict[str, torch.Tensor]] = {}
    for net, items in feeds.items():
        spec = specs[net]
        for t in spec.inputs:
            if not t.shape or not isinstance(t.shape[0], str):
                raise InputSpecError(
                    f"network {net!r} input {t.name!r} has no dynamic batch axis (shape "
                    f"{list(t.shape)}); distillation trains on batches of rows"
                )
        arrays = {t.name: np.concatenate([f[t.name] for f in items]) for t in spec.inputs}
        rows = len(next(iter(arrays.values())))
        if rows > MAX_ROWS:
            keep = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
            arrays = {k: v[keep] for k, v in arrays.items()}
        pools[net] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return pools


def _last_linear(module: nn.Module) -> nn.Linear | None:
    last = None
    for m in module.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


class OutputObjective(Objective):
    """Every student network vs its teacher network on augmented captured inputs."""

    def __init__(
        self,
        teacher: dict[str, nn.Module],
        student: dict[str, nn.Module],
        specs: dict[str, NetworkSpec],
        pools: dict[str, dict[str, torch.Tensor]],
        *,
        jitter: float = 0.05,
        feature_weight: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        nets = list(pools)
        self.nets = nets
        self.specs = specs
        self.pools = pools
        self.jitter = jitter
        self.feature_weight = feature_weight
        # one deepcopy of the whole dict keeps modules that networks share, shared
        self.teacher = nn.ModuleDict(copy.deepcopy({n: teacher[n] for n in nets}))
        self.teacher.eval().requires_grad_(False)
        self.student = nn.ModuleDict({n: student[n] for n in nets})
        self.student.eval().requires_grad_(True)  # eval: dropout off, rollouts deterministic
        self.float_inputs = {
            n: [t.name for t in specs[n].inputs if np.dtype(t.dtype).kind == "f"] for n in nets
        }
        self.float_outputs: dict[str, list[int]] = {}
        for n in nets:
            idx = [i for i, t in enumerate(specs[n].outputs) if np.dtype(t.dtype).kind == "f"]
            if not idx:
                raise InputSpecError(f"network {n!r} has no float output to distil")
            self.float_outputs[n] = idx
        self.spread = {n: {k: float(v.float().std()) for k, v in pools[n].items()} for n in nets}
        self._features: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []
        self.proj = nn.ModuleDict()
        self.hints: dict[str, str] = {}  # network -> why a hint is on or off
        self._hook_features(seed)
        self.out_var = self._output_variance()
        self.holdout: dict[str, dict[str, torch.Tensor]] = {}

    # --- set-up ------------------------------------------------------------------------

    def _hook_features(self, seed: int) -> None:
        for n in self.nets:
            t_lin, s_lin = _last_linear(self.teacher[n]), _last_linear(self.student[n])
            if t_lin is None or s_lin is None or self.feature_weight <= 0:
                self.hints[n] = "off (no final nn.Linear)" if self.feature_weight > 0 else "off"
                continue
            self._handles.append(t_lin.register_forward_pre_hook(self._saver(f"{n}/teacher")))
            self._handles.append(s_lin.register_forward_pre_hook(self._saver(f"{n}/student")))
            with torch.no_grad():
                self._run(n, self.teacher[n], self._rows(n, slice(0, 2)))
                self._run(n, self.student[n], self._rows(n, slice(0, 2)))
            ft, fs = self._features.get(f"{n}/teacher"), self._features.get(f"{n}/student")
            if ft is None or fs is None or ft.dim() != fs.dim() or ft.shape[:-1] != fs.shape[:-1]:
                self.hints[n] = "off (feature shapes differ beyond the last axis)"
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.proj[n] = nn.Linear(fs.shape[-1], ft.shape[-1], bias=False)
            self.hints[n] = f"on (input of the last Linear, {fs.shape[-1]} -> {ft.shape[-1]})"
        self._features.clear()

    def _saver(self, key: str) -> Any:
        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            self._features[key] = args[0]

        return hook

    def _rows(self, n: str, index: Any) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.pools[n].items()}

    def _run(self, n: str, module: nn.Module, feeds: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        out = module(*[feeds[name] for name in self.specs[n].input_names])
        return list(out) if isinstance(out, (tuple, list)) else [out]

    @torch.no_grad()
    def _output_variance(self) -> dict[str, list[float]]:
        var: dict[str, list[float]] = {}
        for n in self.nets:
            rows = min(256, len(next(iter(self.pools[n].values()))))
            outs = self._run(n, self.teacher[n], self._rows(n, slice(0, rows)))
            var[n] = [max(float(outs[i].float().var()), 1e-8) for i in self.float_outputs[n]]
        self._features.clear()
        return var

    def close(self) -> None:
        """Remove the feature hooks from the student (before it is exported)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # --- training ----------------------------------------------------------------------

    def sample(self, generator: torch.Generator, batch: int) -> Batch:
        out: Batch = {}
        for n in self.nets:
            pool = self.pools[n]
            size = len(next(iter(pool.values())))
            idx = torch.randint(0, size, (batch,), generator=generator)
            other = torch.randint(0, size, (batch,), generator=generator)
            lam = torch.rand(batch, generator=generator)
            lam = lam * (torch.rand(batch, generator=generator) < 0.5)
            for name, rows in pool.items():
                x = rows[idx]
                if name in self.float_inputs[n] and self.jitter > 0:
                    shape = (batch,) + (1,) * (x.dim() - 1)
                    x = x + lam.view(shape) * (rows[other] - x)
                    noise = torch.randn(x.shape, generator=generator)
                    x = x + self.jitter * self.spread[n][name] * noise
                out[f"{n}/{name}"] = x
        return out

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Worst relative L2 over networks and float outputs on the held-out rows."""
        if not self.holdout:
            return None
        worst = 0.0
        for n, rows in self.holdout.items():
            ref = self._run(n, self.teacher[n], rows)
            got = self._run(n, self.student[n], rows)
            for i in self.float_outputs[n]:
                den = float(torch.linalg.vector_norm(ref[i].double()))
                num = float(torch.linalg.vector_norm((got[i] - ref[i]).double()))
                worst = max(worst, num / den if den > 0 else num)
        self._features.clear()
        return worst

    def forward(self, batch: Batch) -> torch.Tensor:
        loss = torch.zeros((), device=next(iter(batch.values())).device)
        for n in self.nets:
            feeds = {name: batch[f"{n}/{name}"] for name in self.specs[n].input_names}
            with torch.no_grad():
                ref = self._run(n, self.teacher[n], feeds)
            got = self._run(n, self.student[n], feeds)
            for k, i in enumerate(self.float_outputs[n]):
                loss = loss + torch.mean((got[i] - ref[i]) ** 2) / self.out_var[n][k]
            if n in self.proj:
                ft, fs = self._features[f"{n}/teacher"], self._features[f"{n}/student"]
                hint = torch.mean((self.proj[n](fs) - ft) ** 2) / max(float(ft.var()), 1e-8)
                loss = loss + self.feature_weight * hint
        self._features.clear()
        return loss


# --- the student from a teacher, and its fidelity on onnxruntime ----------------------------


def setup(
    source: TorchSource,
    train_obs: list[Arrays],
    config: DistillConfig,
    holdout_obs: list[Arrays],
) -> tuple[Objective, TorchSource, str, dict[str, Any]]:
    """The width/depth student of ``source``: its objective over the teacher's captured network
    inputs, the student model, how it was made, and the method/data/training notes."""
    from edgekit.loop.capture import capture
    from edgekit.runtimes import TorchRuntime, default_threads

    student = make_student(source, config)
    programs = {n: build_program(p) for n, p in (source.spec.programs or {}).items()}
    programs = programs or {"default": build_program(source.spec.program)}
    runtime = TorchRuntime(source.networks, source.spec, threads=default_threads())
    feeds, ran = capture(programs, runtime, train_obs, config.max_feeds, config.seed)
    if not feeds:
        raise InputSpecError(
            "the observations fit no loop program of the teacher: check their names/shapes"
        )
    specs = {n.name: n for n in source.spec.networks}
    pools = pool_feeds(feeds, specs, config.seed)
    objective = OutputObjective(
        source.networks,
        student.source.networks,
        specs,
        pools,
        jitter=config.jitter,
        feature_weight=config.feature_weight,
        seed=config.seed,
    )
    if holdout_obs:
        held, _ = capture(programs, runtime, holdout_obs, 32, config.seed)
        objective.holdout = {
            n: {k: v[:256] for k, v in rows.items()}
            for n, rows in pool_feeds(held, specs, config.seed).items()
            if n in pools
        }
    untrained = sorted(set(specs) - set(pools))
    if untrained:
        raise InputSpecError(
            f"the observations reach no program that calls network(s) {untrained}; they "
            "cannot be distilled"
        )
    rows = {n: len(next(iter(p.values()))) for n, p in pools.items()}
    return (
        objective,
        student.source,
        student.how,
        {
            "method": "output matching (normalised MSE per float output) + FitNets hint on "
            "the input of the last Linear; inputs captured from the teacher's loop programs "
            "with mixup + jitter; AdamW, warm-up + cosine, EMA, grad clipping",
            "data": {"programs": ran, "pool_rows": rows},
            "training": {"feature_hints": objective.hints},
        },
    )


def fidelity(
    source: TorchSource, t_rt: Any, s_rt: Any, holdout: list[Arrays], seed: int
) -> dict[str, Any]:
    """Whole-tick fidelity of the student vs the teacher (both exported, on onnxruntime) over
    every loop program the held-out observations fit."""
    from edgekit.loop.capture import obs_match
    from edgekit.loop.fidelity import decision_metrics, tick_fidelity, worst_error

    programs = {n: build_program(p) for n, p in (source.spec.programs or {}).items()}
    programs = programs or {"default": build_program(source.spec.program)}
    programs = {n: p for n, p in programs.items() if obs_match(p.observation_spec(), holdout[0])}
    rows = tick_fidelity(programs, t_rt, s_rt, holdout, seed)
    return {
        "measured_on": "onnxruntime FP32 (graph optimizations on), teacher vs student",
        "scope": f"whole tick, {len(holdout)} held-out observations per program, same seed",
        "rows": [r.to_dict() for r in rows],
        "headline": {"metric": "rel_l2", "value": worst_error(rows)},
        "metrics": {"rel_l2": worst_error(rows), **decision_metrics(rows)},
    }
