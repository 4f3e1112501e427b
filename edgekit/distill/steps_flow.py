"""Step distillation of a flow-matching VLA (``zoo:vla-flow``, pi0 / SmolVLA): its action
expert's K Euler steps (pi0's 10) collapsed into N = 1 or 2 expert calls per planning tick.

Method: k-step distillation of the flow's ODE sampler (Liu et al. 2022, "Flow Straight and
Fast", section 2.3; the knowledge distillation of a deterministic sampler of Luhman & Luhman
2021, here with the intermediate targets of progressive distillation, Salimans & Ho 2022, in
one round). The teacher is the expert's K-step Euler integration from noise (t = 1) to the
chunk (t = 0) on pi0's grid ``1, 1 - 1/K, ..., 1/K``; the student is a copy of the expert (the
same velocity-predicting network, initialised from the teacher's) integrated with N Euler steps
on every (K/N)-th point of that grid (``1, 1 - 1/N, ...``: the program's own grid for
``steps=N``, so N must divide K). From the same noise and the same prefix KV cache the
student's N-step rollout is unrolled with gradients and its state after step ``j`` regressed
(MSE) onto the teacher's state at the same time, the last onto the teacher's chunk. Before
training the student *is* the teacher sampled with N steps. The prefix (the "VLM") is frozen
and shared: its KV cache is computed once per training observation and the student artifact
ships the teacher's prefix unchanged.

That student is bounded by the prefix it keeps: one prefix + N expert calls against one prefix +
K. With ``--student NARROW`` (a smaller vla-flow with the teacher's network io, e.g. an earlier
``--width/--depth`` output) :class:`PrefixRolloutObjective` trains a smaller prefix as well: the
student's prefix makes its own KV cache from the observation, its expert rolls N steps from it,
and that rollout is regressed onto the teacher's K-step states from the teacher's cache. The
whole planning tick is distilled end to end, so the narrow prefix learns the cache its own
expert needs (a width/depth student alone matches each network on the teacher's inputs, and
the errors compound through K steps).

This is the objective of the diffusion policy's step students,
:class:`edgekit.distill.rollout.RolloutObjective`, with the flow-matching Euler update
(:func:`edgekit.distill.rollout.euler_update`) a declared tick's flow block also uses.

Why this rather than the one-step flow methods that train on demonstrations:

* Shortcut models (Frans et al. 2024) and SnapFlow-style self-distillation condition the
  network on the step size and train it with the flow-matching loss on *action labels* plus a
  self-consistency target; ``edgekit distill`` has observations only (no actions), and the
  student keeps the teacher's io (x_t, t, KV), so the artifact drops into the same program.
* Consistency distillation needs a target network and many more than CPU-minutes of steps.
* The deterministic ODE map noise -> chunk is exactly what the shipped sampler computes, so
  regressing onto it from the same noise measures and trains what the robot runs; the student
  is trained on the states it visits itself (errors do not compound unseen).

:func:`fidelity` compares the exported student's action chunks with the teacher's K-step
sampler (onnxruntime, same noise and observation) on held-out observations, in units of the
action range, next to the same N-step grid before training.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from edgekit.distill.config import DistillConfig
from edgekit.distill.rollout import RolloutObjective, TorchSampler, euler_update
from edgekit.distill.steps import chunk_fidelity, run_chunks
from edgekit.distill.train import Objective
from edgekit.errors import BadInputError
from edgekit.loader import TorchSource
from edgekit.loop import Arrays
from edgekit.models import build_program
from edgekit.spec import ProgramSpec

FLOW = "vla-flow"
KV = ("prefix_keys", "prefix_values")


def flow_sampler(steps: int) -> TorchSampler:
    """pi0's K-step Euler sampler in torch: t = 1, 1 - 1/K, ..., 1/K; x <- x - v / K."""
    from edgekit.models.vla_flow.program import flow_times

    times = flow_times(steps)
    rows = [[b - a] for a, b in zip(times, [*times[1:], 0.0], strict=True)]
    return TorchSampler(times, torch.tensor(rows, dtype=torch.float32), euler_update)


def _call(net: nn.Module, x: torch.Tensor, t: float, cond: dict[str, torch.Tensor]) -> torch.Tensor:
    ts = torch.full((x.shape[0],), float(t), dtype=torch.float32, device=x.device)
    return net(x, ts, cond[KV[0]], cond[KV[1]])


def prefix_inputs(params: dict[str, Any], observations: list[Arrays]) -> dict[str, torch.Tensor]:
    """The prefix's inputs for each observation, pre-processed as the program does (rows)."""
    program = build_program(ProgramSpec(FLOW, params))
    program.reset(0)
    feeds = [program.prefix_feeds(o) for o in observations]  # type: ignore[attr-defined]
    return {n: torch.from_numpy(np.concatenate([f[n] for f in feeds])) for n in feeds[0]}


def prefix_cache(
    prefix: nn.Module, params: dict[str, Any], observations: list[Arrays], batch: int = 32
) -> dict[str, torch.Tensor]:
    """The prefix's KV cache for each observation."""
    rows = prefix_inputs(params, observations)
    n = len(observations)
    keys, values = [], []
    for i in range(0, n, batch):
        with torch.inference_mode():
            k, v = prefix(*(r[i : i + batch] for r in rows.values()))
        keys.append(k.clone())
        values.append(v.clone())
    return {KV[0]: torch.cat(keys), KV[1]: torch.cat(values)}


class PrefixRolloutObjective(RolloutObjective):
    """The rollout objective with a student of its own (``--student``): its prefix is trained
    too. The conditioning rows are the prefix's inputs (images, instruction, proprio); the
    teacher's frozen prefix and the student's prefix each make their KV cache once per rollout,
    and the student's N-step rollout from its own cache is regressed onto the teacher's K-step
    states from the teacher's cache (same noise, same observation): the whole planning tick is
    distilled, so the student's prefix learns the cache its own expert needs."""

    def __init__(
        self, teacher: dict[str, nn.Module], student: dict[str, nn.Module],
        inputs: dict[str, torch.Tensor], shape: tuple[int, ...], teacher_sampler: TorchSampler,
        student_sampler: TorchSampler, jitter: float, pool: int, pool_seed: int,
    ) -> None:  # fmt: skip
        super().__init__(
            teacher["expert"], _call, inputs, shape, teacher_sampler, student_sampler, jitter,
            span=None, pool=pool, pool_seed=pool_seed,
        )  # fmt: skip
        self.names = list(inputs)
        self.teacher_prefix = copy.deepcopy(teacher["prefix"]).eval().requires_grad_(False)
        self.student = nn.ModuleDict(
            {n: copy.deepcopy(student[n]).eval().requires_grad_(True) for n in ("prefix", "expert")}
        )

    def _kv(self, prefix: nn.Module, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        keys, values = prefix(*(cond[n] for n in self.names))
        return {KV[0]: keys, KV[1]: values}

    @torch.no_grad()
    def teacher_states(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return super().teacher_states(x, self._kv(self.teacher_prefix, cond))

    def student_states(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        student = cast(nn.ModuleDict, self.student)
        kv, states = self._kv(student["prefix"], cond), []
        for j, t in enumerate(self.s_steps):
            x = self.s_step(x, self.call(student["expert"], x, t, kv), self.s_coefs[j])
            states.append(x)
        return states


def _check(pspec: ProgramSpec, n: int, where: str) -> int:
    k = int(pspec.params["steps"])
    if n >= k:
        raise BadInputError(f"--denoise-steps {n}: the teacher ({where}) already makes {k} calls")
    if k % n:
        raise BadInputError(
            f"--denoise-steps {n}: the student's Euler grid must be every (K/N)-th point of the "
            f"teacher's {k}-step grid ({where}); N must divide {k} (or set the teacher's steps "
            "with --loop steps=K)"
        )
    if pspec.params.get("recompute_prefix"):
        raise BadInputError(
            f"--denoise-steps: {where} recomputes the prefix every step (recompute_prefix); "
            "distil the KV-cached program"
        )
    return k


def setup(
    source: TorchSource,
    pname: str,
    pspec: ProgramSpec,
    train_obs: list[Arrays],
    config: DistillConfig,
    holdout_obs: list[Arrays],
) -> tuple[Objective, TorchSource, str, dict[str, Any]]:
    """The N-step student of the flow program ``pname``: its objective, the student model, how
    it was made, and the method/data/training notes for the report."""
    where = f"{source.ref} program {pname!r}"
    if config.denoise_block is not None:
        raise BadInputError(
            f"--denoise-block picks a denoise block of a declared tick; {where} is {pspec.name!r}"
        )
    n = int(config.denoise_steps or 0)
    k = _check(pspec, n, where)
    params = dict(pspec.params)
    shape = (int(params["chunk"]), int(params["action_dim"]))
    own = _own_student(source, config)
    objective: RolloutObjective
    if own is None:  # the teacher's expert, fine-tuned; its prefix frozen and shared
        objective = RolloutObjective(
            source.networks["expert"], _call, prefix_cache(source.networks["prefix"], params,
            train_obs), shape, flow_sampler(k), flow_sampler(n), config.jitter, span=None,
            pool=config.teacher_pool, pool_seed=config.seed + 2,
        )  # fmt: skip
        held = prefix_cache(source.networks["prefix"], params, holdout_obs) if holdout_obs else {}
        networks: dict[str, nn.Module] = {
            "prefix": source.networks["prefix"],
            "expert": objective.student,
        }
        init = "expert initialised from the teacher's, prefix (KV cache) frozen and shared"
        cond = "prefix KV cache"
    else:
        objective = PrefixRolloutObjective(
            source.networks, own.networks, prefix_inputs(params, train_obs), shape,
            flow_sampler(k), flow_sampler(n), config.jitter, config.teacher_pool, config.seed + 2,
        )  # fmt: skip
        held = prefix_inputs(params, holdout_obs) if holdout_obs else {}
        networks = dict(cast(nn.ModuleDict, objective.student).items())
        init = f"prefix and expert of the student {own.ref}, both trained through the sampler"
        cond = "observation (each through its own prefix)"
    if holdout_obs:
        gen = torch.Generator().manual_seed(config.seed + 1)
        x = torch.randn((len(holdout_obs), *shape), generator=gen)
        objective.holdout = objective.batch(x, held)
    sprog = ProgramSpec(FLOW, {**params, "steps": n}, pspec.hz)
    name = f"distilled{n}"
    spec = replace(source.spec, program=sprog, programs={name: sprog})
    if own is not None:
        spec = replace(spec, config=own.spec.config, preset=own.spec.preset)
    student = TorchSource(f"{source.ref} (student)", spec, nn.ModuleDict(networks), networks, "")
    grid = [round(t, 6) for t in flow_sampler(n).timesteps]
    return (
        objective,
        student,
        f"{n}-step flow-matching Euler on every {k // n}th time of the teacher's {k}-step grid "
        f"(t = {grid} -> 0), {init}; teacher {pname}",
        {
            "method": "k-step distillation of the flow ODE sampler (Liu et al. 2022, Flow "
            "Straight and Fast; Luhman & Luhman 2021) with progressive distillation's "
            f"intermediate targets (Salimans & Ho 2022) in one round: the student's {n}-step "
            f"Euler rollout regressed onto the teacher's Euler-{k} states at the same times, "
            f"from the same noise and {cond}; AdamW, warm-up + cosine, EMA, grad clipping",
            "data": {"kv_caches" if own is None else "observations": objective.rows()},
            "training": {"teacher_steps": k, "student_steps": n},
        },
    )


def _own_student(source: TorchSource, config: DistillConfig) -> TorchSource | None:
    """``--student``: a smaller vla-flow with the teacher's network io (None: none given)."""
    if config.student is None:
        return None
    from edgekit.distill.students import make_student

    return make_student(source, config).source


def fidelity(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    t_rt: Any,
    s_rt: Any,
    holdout: list[Arrays],
    seed: int,
) -> dict[str, Any]:
    """The student's action chunks vs the teacher's K-step sampler on the held-out observations
    (both exported, on onnxruntime), next to the same N-step grid before training."""
    tparams = dict(source.spec.programs[pname].params)
    sparams = dict(student.spec.program.params)
    k, n = int(tparams["steps"]), int(sparams["steps"])
    ref = run_chunks(tparams, t_rt, holdout, seed, FLOW)
    got = run_chunks(sparams, s_rt, holdout, seed, FLOW)
    base = run_chunks(sparams, t_rt, holdout, seed, FLOW)  # the student before training
    scope = (
        f"action chunk vs the teacher's flow-matching Euler-{k} sampler, same initial noise "
        f"and observation, {len(holdout)} held-out observations"
    )
    return chunk_fidelity(
        got, ref, base, tparams, scope, f"teacher expert, same {n}-step Euler grid"
    )
