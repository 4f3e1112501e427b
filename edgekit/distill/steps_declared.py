"""Step distillation of a declared tick's denoise block (``edgekit distill FILE.py:factory
--denoise-steps N``): the zoo's method (:mod:`.steps`) on a user's own control loop.

Method: the objective is :class:`edgekit.distill.rollout.RolloutObjective` (progressive
distillation collapsed into one round: the student's N-step rollout regressed onto the
teacher's states at the same noise levels); the teacher's deterministic sampler and the
student's grid are :mod:`.denoise_block`'s.

Data: the conditioning the denoiser sees (every input of its call besides the sample and the
timestep: an encoder's output, a normalised state history...) is captured by running the
FP32 tick in torch on the observations, as one episode (so history and recurrent blocks see
every observation in order) in which every tick plans (a chunk queue is emptied after each
tick); the first denoiser call of each tick is recorded.

The student artifact's tick is the teacher's with that block's explicit ``timesteps`` (DDIM)
or ``sigmas`` (flow-matching Euler) and ``num_inference_steps`` = N. :func:`fidelity` compares
the block's result (the clean sample) of the exported student with the teacher's deterministic
sampler's on onnxruntime, on the held-out observations, next to the untrained N-step student.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill import denoise_block as db
from edgekit.distill.config import DistillConfig
from edgekit.distill.rollout import RolloutObjective, result_error
from edgekit.distill.train import Objective
from edgekit.errors import BadInputError
from edgekit.loader import TorchSource
from edgekit.loop import Arrays, Runtime, TickContext
from edgekit.loop.blocks import TickProgram
from edgekit.spec import ProgramSpec


class _FirstCall:
    """A runtime that records the named inputs of ``network``'s first call after ``arm()``."""

    def __init__(self, inner: Runtime, network: str, names: list[str]) -> None:
        self.inner, self.network, self.names = inner, network, names
        self.name = inner.name
        self.rows: list[Arrays] = []
        self.armed = False

    def run(self, network: str, feeds: Arrays) -> Arrays:
        if self.armed and network == self.network:
            self.rows.append({k: np.array(feeds[k][0]) for k in self.names})
            self.armed = False
        return self.inner.run(network, feeds)


def planning_episode(
    params: dict[str, Any],
    runtime: Any,
    observations: list[Arrays],
    seed: int,
    before: Any = None,
    tap: int | None = None,
) -> list[Arrays]:
    """The tick over ``observations`` as one episode from ``reset(seed)``, every tick planning
    (its chunk queue emptied after each tick); ``before()`` runs before each tick. Returns
    what block ``tap`` wrote on each tick (None: the tick's outputs)."""
    program = TickProgram(params)
    program.reset(seed)
    ctx = TickContext(runtime)
    outs, taps = [], program.tap(tap) if tap is not None else None
    for obs in observations:
        if before is not None:
            before()
        ctx.clear()
        outs.append(program.tick(ctx, obs))
        if program.chunk is not None:
            program.blocks[program.chunk].reset()
    return outs if taps is None else taps


def capture_conds(
    source: TorchSource, params: dict[str, Any], index: int, observations: list[Arrays], seed: int
) -> dict[str, torch.Tensor]:
    """The denoise block's conditioning inputs on each observation (rows, by input name)."""
    from edgekit.runtimes import TorchRuntime

    block = params["blocks"][index]
    names = list(block["inputs"])
    inner = TorchRuntime(source.networks, source.spec, threads=torch.get_num_threads())
    rec = _FirstCall(inner, block["network"], names)
    planning_episode(params, rec, observations, seed, before=lambda: setattr(rec, "armed", True))
    if len(rec.rows) != len(observations):
        raise RuntimeError(f"captured {len(rec.rows)} denoiser calls for {len(observations)} ticks")
    return {k: torch.from_numpy(np.stack([r[k] for r in rec.rows])) for k in names}


def setup(
    source: TorchSource,
    pname: str,
    pspec: ProgramSpec,
    train_obs: list[Arrays],
    config: DistillConfig,
    holdout_obs: list[Arrays],
) -> tuple[Objective, TorchSource, str, dict[str, Any]]:
    """The step-distillation student of the tick ``pname``'s denoise block: its objective, the
    student model, how it was made, and the method/data/training notes for the report."""
    where = f"{source.ref} program {pname!r}"
    params = db.effective(pspec.params)
    index, block = db.pick(params, config.denoise_block, where)
    where = f"{where} blocks[{index}] ({block.sampler.kind}, {block.num_inference_steps} steps)"
    k, n = len(block.sampler.timesteps), int(config.denoise_steps or 0)
    if n >= k:
        raise BadInputError(f"--denoise-steps {n}: the teacher ({where}) already makes {k} calls")
    ref = db.reference(block, where)
    stu = db.student(ref, n, where)
    spec = next(s for s in source.spec.networks if s.name == block.network)
    call = db.denoiser_call(spec, block, where)
    conds = capture_conds(source, params, index, train_obs, config.seed)
    objective = RolloutObjective(
        source.networks[block.network], call, conds, tuple(block.shape),
        db.torch_sampler(ref), db.torch_sampler(stu), config.jitter, db.sample_span(ref),
        config.teacher_pool, config.seed + 2,
    )  # fmt: skip
    if holdout_obs:
        held = capture_conds(source, params, index, holdout_obs, config.seed)
        gen = torch.Generator().manual_seed(config.seed + 1)
        x = torch.randn((len(holdout_obs), *block.shape), generator=gen)
        objective.holdout = objective.batch(x, held)
    sparams = db.with_blocks(params, {index: db.dump(stu)})
    sprog = ProgramSpec("tick", sparams, pspec.hz)
    student_spec = replace(source.spec, program=sprog, programs={"tick": sprog})
    networks: dict[str, nn.Module] = {**source.networks, block.network: objective.student}
    student_src = TorchSource(
        f"{source.ref} (student)", student_spec, nn.ModuleDict(networks), networks, ""
    )
    grid = stu.timesteps if stu.timesteps is not None else [round(s, 6) for s in stu.sigmas or []]
    kind = stu.sampler.kind
    return (
        objective,
        student_src,
        f"{n}-step {kind} sampler on every {k // n}th step of the teacher's grid "
        f"({'timesteps' if stu.timesteps is not None else 'sigmas'} {grid}), denoiser "
        f"{block.network!r} initialised from the teacher's; teacher {pname} blocks[{index}]",
        {
            "method": "progressive distillation (Salimans & Ho 2022) in one round on the "
            f"tick's denoise block: the student's {n}-step rollout regressed onto the "
            f"teacher's {db.teacher_name(block)} states at the same noise levels, from the "
            "same noise and "
            "conditioning (captured by running the tick on the data, every tick planning); "
            "AdamW, warm-up + cosine, EMA, grad clipping",
            "data": {"conds": objective.rows()},
            "training": {"teacher_steps": k, "student_steps": n, "denoise_block": index},
        },
    )


def fidelity(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    t_rt: Any,
    s_rt: Any,
    holdout: list[Arrays],
    seed: int,
    which: str | None = None,
) -> dict[str, Any]:
    """The student's denoise result vs the teacher's deterministic sampler on the held-out
    observations (both exported, on onnxruntime), next to the untrained N-step student."""
    tparams = db.effective(source.spec.programs[pname].params)
    index, block = db.pick(tparams, which, f"{source.ref} program {pname!r}")
    ref = db.reference(block, pname)
    result = block.result

    def results(params: dict[str, Any], runtime: Any) -> list[np.ndarray]:
        """The block's clean sample on each tick (before any later block rescales it)."""
        return [o[result] for o in planning_episode(params, runtime, holdout, seed, tap=index)]

    sparams = db.effective(student.spec.program.params)
    want = results(db.with_blocks(tparams, {index: db.dump(ref)}), t_rt)
    got = results(sparams, s_rt)
    base = results(sparams, t_rt)  # the student before training: the teacher's denoiser
    span = db.sample_span(ref)
    if span is None:
        flat = np.stack(want).reshape(-1, want[0].shape[-1]).astype(np.float64)
        span_used: Any = np.maximum(flat.max(0) - flat.min(0), 1e-12)
        unit = f"the range of each feature of the teacher's {result!r} over these ticks"
    else:
        span_used, unit = span, f"the clipped sample's range ({span:g})"
    n = int(sparams["blocks"][index]["num_inference_steps"])
    student_err = result_error(got, want, span_used)
    return {
        "measured_on": "onnxruntime FP32 (graph optimizations on)",
        "scope": f"denoise result {result!r} (blocks[{index}]) vs the teacher's deterministic "
        f"{db.teacher_name(block)} sampler, same initial noise and conditioning, "
        f"{len(holdout)} held-out observations as one episode, every tick planning; abs errors "
        f"in units of {unit}",
        "student": student_err,
        "undistilled_baseline": {
            "what": f"teacher denoiser, same {n}-step grid",
            **result_error(base, want, span_used),
        },
        "headline": {"metric": "action_range_mean_abs", "value": student_err["mean_abs"]},
    }
