"""Step distillation of a ``diffusion-sampler`` teacher (DDIM-16, DDPM-100...) into 1-4 calls.

Method: progressive distillation (Salimans & Ho 2022) collapsed into one round. The teacher's
deterministic sampler (DDIM with K steps on its own grid; for a DDPM teacher, the DDIM sampler
of the same network, i.e. its probability-flow ODE) maps initial noise ``x_T`` and the
encoder's ``cond`` to a chunk. The student is a copy of the teacher's denoiser (initialised
from its weights, still an epsilon predictor) that runs DDIM on every (K/N)-th timestep of the
teacher's grid, its last step going straight to the clean chunk; before training it *is* the
teacher sampled with N steps. Its N-step rollout from the same ``x_T`` is unrolled with
gradients and its state after step ``j`` is regressed (MSE) onto the teacher's state after
``j * K / N`` steps (the two grids coincide there), the last being the action chunk itself, so
the student is trained on the states it visits itself.

Why this and not the alternatives (measured on ``zoo:diffusion-policy:tiny``):

* Textbook progressive rounds (halve the steps each round, targets from the teacher's own
  states) stalled: each round's errors compound along the student's own trajectory, which
  those targets never show it.
* The zoo's "leading" grid for N steps ends at t = 0, where epsilon barely enters the update,
  so a leading-grid 1- or 2-step student cannot move its output; subsampling the teacher's
  grid keeps every call useful and makes intermediate targets exact.
* A clean-sample (x0) predicting student on a trailing grid avoids the 1 / sqrt(alpha) blow-up
  at pure noise but starts far from the teacher: after 300 steps it was at 19% of the action
  range where this method reaches 3.4% (N = 4, teacher trained on demonstrations).
* Consistency distillation (Consistency Policy) needs a target network and far more than
  CPU-minutes of steps.

**One call** is the exception to the epsilon student: its single DDIM step reads the chunk as
``(x - sqrt(1 - a_t) eps) / sqrt(a_t)`` at the teacher's first timestep, where ``sqrt(a_t)``
is ~0.14 (t = 90 of 100), so the network must reproduce its pure-noise input to a fraction of a
percent and every error reaches the chunk 7x larger. The one-call student therefore predicts the
clean chunk (``prediction_type="sample"``, as diffusers' DDIM reads it): the "knowledge
distillation" of Luhman & Luhman (2021), a network mapping (noise, cond) to the teacher's
sample in one call, still initialised from the teacher's weights. Measured on the Reacher
teacher (DDIM-16), 2000 steps from the same 700 DART-perturbed observations: held-out error
1.40% of the action range with epsilon, 0.70% with the clean-chunk output.

The objective is :class:`edgekit.distill.rollout.RolloutObjective`, which a declared tick's
denoise block shares (:mod:`edgekit.distill.steps_declared`); the student is trained with the
shared loop in :mod:`edgekit.distill.train` (AdamW, warm-up + cosine, EMA, clipping, DDP). The
x0 clip is applied as the program applies it.
:func:`setup` makes the student and its objective from a teacher; :func:`fidelity` checks the
exported student's chunks against the teacher's on onnxruntime.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill.config import DistillConfig
from edgekit.distill.denoise_block import NEEDS
from edgekit.distill.rollout import RolloutObjective, TorchSampler, result_error
from edgekit.distill.train import Objective
from edgekit.errors import BadInputError
from edgekit.loader import TorchSource
from edgekit.loop import Arrays, LoopProgram, TickContext
from edgekit.models import build_program
from edgekit.spec import ProgramSpec

SAMPLER = "diffusion-sampler"


def teacher_params(params: dict[str, Any], steps: int) -> dict[str, Any]:
    """The deterministic teacher sampler: DDIM with ``steps`` steps on the teacher's grid."""
    return {**params, "scheduler": "ddim", "num_inference_steps": steps}


def student_params(
    params: dict[str, Any], steps: int, teacher_steps: int, prediction: str = "epsilon"
) -> dict[str, Any]:
    """The student's sampler: DDIM with ``steps`` calls on every (K/N)-th timestep of the
    teacher's K-step grid (its first call at the teacher's first timestep), the last going
    straight to the clean chunk."""
    grid = sampler_program(teacher_params(params, teacher_steps)).timesteps  # type: ignore[attr-defined]
    stride = teacher_steps // steps
    return {
        **params,
        "scheduler": "ddim",
        "num_inference_steps": steps,
        "timesteps": [int(t) for t in grid[::stride][:steps]],
        **({"prediction_type": prediction} if prediction != "epsilon" else {}),
    }


def sampler_program(params: dict[str, Any]) -> LoopProgram:
    return build_program(ProgramSpec(SAMPLER, params))


def step_coefs(program: LoopProgram) -> tuple[list[int], torch.Tensor]:
    """The program's timesteps and its per-step float32 scheduler coefficients (steps, 6)."""
    timesteps = list(program.timesteps)  # type: ignore[attr-defined]
    coefs = np.asarray(program.coefs, np.float32)  # type: ignore[attr-defined]
    return timesteps, torch.from_numpy(coefs)


def ddim_step(
    x: torch.Tensor, out: torch.Tensor, coefs: torch.Tensor, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``DiffusionSamplerProgram.step`` (DDIM) in torch: returns (next sample, clipped x0).

    ``prediction`` "epsilon" (the zoo's) or "sample" (a clean-sample predictor)."""
    c0, c1, c_x0, c_eps = (coefs[k] for k in range(4))
    if prediction == "epsilon":
        eps, x0 = out, (c0 * x - c1 * out).clamp(-1.0, 1.0)
    else:
        eps, x0 = (c0 * x - out) / c1, out.clamp(-1.0, 1.0)
    return c_x0 * x0 + c_eps * eps, x0


def encode(
    encoder: nn.Module, observations: list[Arrays], program: Any, batch: int = 32
) -> torch.Tensor:
    """``cond`` for each observation, pre-processed by the program's own ``preprocess``."""
    out = []
    for i in range(0, len(observations), batch):
        pre = [program.preprocess(obs) for obs in observations[i : i + batch]]
        images = np.concatenate([im for im, _ in pre])
        proprio = np.concatenate([pr for _, pr in pre])
        with torch.inference_mode():
            cond = encoder(torch.from_numpy(images), torch.from_numpy(proprio))
        out.append(cond.clone())
    return torch.cat(out)


class ModuleRuntime:
    """A :class:`edgekit.loop.Runtime` over the sampler's two torch networks."""

    name = "torch"
    _inputs = {"encoder": ("image", "proprio"), "denoiser": ("sample", "timestep", "cond")}
    _outputs = {"encoder": "cond", "denoiser": "noise_pred"}

    def __init__(self, networks: dict[str, nn.Module]) -> None:
        self.networks = networks

    def run(self, network: str, feeds: Arrays) -> Arrays:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self._inputs[network]]
        with torch.inference_mode():
            out = self.networks[network](*args)
        return {self._outputs[network]: out.numpy()}


def _call(net: nn.Module, x: torch.Tensor, t: float, cond: dict[str, torch.Tensor]) -> torch.Tensor:
    return net(x, torch.full((x.shape[0],), float(t), device=x.device), cond["cond"])


def _eps_step(x: torch.Tensor, out: torch.Tensor, coefs: torch.Tensor) -> torch.Tensor:
    return ddim_step(x, out, coefs, "epsilon")[0]


def _sample_step(x: torch.Tensor, out: torch.Tensor, coefs: torch.Tensor) -> torch.Tensor:
    return ddim_step(x, out, coefs, "sample")[0]


def torch_sampler(params: dict[str, Any]) -> TorchSampler:
    """The zoo sampler ``params`` (DDIM) as a :class:`TorchSampler` of its own coefficients."""
    timesteps, coefs = step_coefs(sampler_program(params))
    step = _sample_step if params.get("prediction_type") == "sample" else _eps_step
    return TorchSampler([float(t) for t in timesteps], coefs, step)


class StepObjective(RolloutObjective):
    """Teacher DDIM-K chunk vs the student's N-step rollout (see module docstring)."""

    def __init__(
        self,
        teacher: nn.Module,
        conds: torch.Tensor,
        params: dict[str, Any],
        student_steps: int,
        teacher_steps: int,
        jitter: float = 0.05,
        prediction: str = "epsilon",
        pool: int = 0,
        pool_seed: int = 0,
    ) -> None:
        super().__init__(
            teacher,
            _call,
            {"cond": conds},
            (int(params["horizon"]), int(params["action_dim"])),
            torch_sampler(teacher_params(params, teacher_steps)),
            torch_sampler(student_params(params, student_steps, teacher_steps, prediction)),
            jitter,
            span=2.0,  # the chunk lives in [-1, 1]
            pool=pool,
            pool_seed=pool_seed,
        )

    def teacher_states(
        self, x: torch.Tensor, cond: torch.Tensor | dict[str, torch.Tensor]
    ) -> list[torch.Tensor]:
        """As :meth:`RolloutObjective.teacher_states`; ``cond`` may be the encoder's tensor."""
        return super().teacher_states(x, cond if isinstance(cond, dict) else {"cond": cond})


def sample_chunks(
    encoder: nn.Module,
    denoiser: nn.Module,
    params: dict[str, Any],
    observations: list[Arrays],
    seed: int = 0,
) -> list[np.ndarray]:
    """Action chunks of the sampler ``params`` in torch, reset to ``seed + i`` for observation
    ``i`` (every sampler sees the same initial noise for the same observation)."""
    program = sampler_program(params)
    ctx = TickContext(ModuleRuntime({"encoder": encoder, "denoiser": denoiser}))
    out = []
    for i, obs in enumerate(observations):
        program.reset(seed + i)
        ctx.clear()
        out.append(program.tick(ctx, obs)["action_chunk"])
    return out


def action_error(
    got: list[np.ndarray], ref: list[np.ndarray], params: dict[str, Any]
) -> dict[str, float]:
    """Chunk error in units of the action range (high - low), plus relative L2 and cosine."""
    span = np.asarray(params["action_high"], np.float64) - np.asarray(
        params["action_low"], np.float64
    )
    return result_error(got, ref, span)


# --- the student from a teacher, and its fidelity on onnxruntime ----------------------------


def setup(
    source: TorchSource,
    pname: str,
    pspec: ProgramSpec,
    train_obs: list[Arrays],
    config: DistillConfig,
    holdout_obs: list[Arrays],
) -> tuple[Objective, TorchSource, str, dict[str, Any]]:
    """The step-distillation student of ``source``'s sampler program ``pname``: its objective,
    the student model, how it was made, and the method/data/training notes for the report."""
    if config.denoise_block is not None:
        raise BadInputError(
            f"--denoise-block picks a denoise block of a declared tick; {source.ref} program "
            f"{pname!r} is {pspec.name!r}"
        )
    if pspec.name != SAMPLER or "denoiser" not in source.networks:
        raise BadInputError(
            f"{NEEDS}; {source.ref} program {pname!r} is {pspec.name!r}, with no denoise block"
        )
    k = int(pspec.params["num_inference_steps"])
    n = int(config.denoise_steps or 0)
    if n >= k:
        raise BadInputError(f"--denoise-steps {n}: the teacher ({pname}) already makes {k} calls")
    teacher_program = build_program(pspec)
    conds = encode(source.networks["encoder"], train_obs, teacher_program)
    pred = "sample" if n == 1 else "epsilon"  # see the module docstring
    objective = StepObjective(
        source.networks["denoiser"],
        conds,
        dict(pspec.params),
        n,
        k,
        config.jitter,
        pred,
        config.teacher_pool,
        config.seed + 2,
    )
    if holdout_obs:
        cond = encode(source.networks["encoder"], holdout_obs, teacher_program)
        gen = torch.Generator().manual_seed(config.seed + 1)
        x = torch.randn((len(cond), *objective.shape), generator=gen)
        objective.holdout = objective.batch(x, {"cond": cond})
    sprog = ProgramSpec(SAMPLER, student_params(dict(pspec.params), n, k, pred), pspec.hz)
    name = f"distilled{n}"
    spec = replace(source.spec, program=sprog, programs={name: sprog})
    container = copy.copy(source.module)
    networks = {"encoder": source.networks["encoder"], "denoiser": objective.student}
    student = TorchSource(f"{source.ref} (student)", spec, container, networks, "")
    det = "DDIM" if pspec.params.get("scheduler") == "ddim" else "DDIM (deterministic ODE of)"
    return (
        objective,
        student,
        f"{n}-step DDIM sampler on every {k // n}th step of the teacher's grid "
        f"{sprog.params['timesteps']}, denoiser initialised from the teacher's"
        f"{' and predicting the clean chunk' if pred == 'sample' else ''}; teacher {pname}",
        {
            "method": "progressive distillation (Salimans & Ho 2022) in one round: the "
            f"student's {n}-step rollout regressed onto the teacher's {det}-{k} states at the "
            "same timesteps, from the same noise and cond; AdamW, warm-up + cosine, EMA, "
            "grad clipping",
            "data": {"conds": len(conds)},
            "training": {"teacher_steps": k, "student_steps": n},
        },
    )


def run_chunks(
    params: dict[str, Any], runtime: Any, observations: list[Arrays], seed: int, name: str = SAMPLER
) -> list[np.ndarray]:
    """Action chunks of a sampler (program ``name``), reset to ``seed + i`` for observation
    ``i`` (so every sampler starts from the same noise for the same observation)."""
    program = build_program(ProgramSpec(name, params))
    ctx = TickContext(runtime)
    out = []
    for i, obs in enumerate(observations):
        program.reset(seed + i)
        ctx.clear()
        out.append(program.tick(ctx, obs)["action_chunk"])
    return out


def fidelity(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    t_rt: Any,
    s_rt: Any,
    holdout: list[Arrays],
    seed: int,
) -> dict[str, Any]:
    """The student's action chunks vs the teacher's deterministic sampler on the held-out
    observations (both exported, on onnxruntime), next to the undistilled few-step baseline."""
    tparams = dict(source.spec.programs[pname].params)
    sparams = dict(student.spec.program.params)
    k, n = int(tparams["num_inference_steps"]), int(sparams["num_inference_steps"])
    ref = run_chunks(teacher_params(tparams, k), t_rt, holdout, seed)
    got = run_chunks(sparams, s_rt, holdout, seed)
    # the teacher's denoiser on the student's grid (an epsilon predictor, as the teacher is)
    bparams = {k: v for k, v in sparams.items() if k != "prediction_type"}
    base = run_chunks(bparams, t_rt, holdout, seed)
    scope = (
        f"action chunk vs the teacher's deterministic DDIM-{k} sampler, same initial noise and "
        f"cond, {len(holdout)} held-out observations"
    )
    return chunk_fidelity(got, ref, base, tparams, scope, f"teacher denoiser, same {n}-step grid")


def chunk_fidelity(
    got: list[np.ndarray],
    ref: list[np.ndarray],
    base: list[np.ndarray],
    params: dict[str, Any],
    scope: str,
    baseline: str,
) -> dict[str, Any]:
    """A step student's fidelity report: its chunks ``got`` and the untrained grid's ``base``
    vs the teacher's ``ref``, in units of the action range (``params``' low/high)."""
    student_err = action_error(got, ref, params)
    return {
        "measured_on": "onnxruntime FP32 (graph optimizations on)",
        "scope": f"{scope}; abs errors in units of the action range (high - low)",
        "student": student_err,
        "undistilled_baseline": {"what": baseline, **action_error(base, ref, params)},
        "headline": {"metric": "action_range_mean_abs", "value": student_err["mean_abs"]},
        "metrics": {
            "action_range_mean_abs": student_err["mean_abs"],
            "rel_l2": student_err["rel_l2"],
        },
    }
