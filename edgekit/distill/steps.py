"""Step distillation of a ``diffusion-sampler`` teacher (DDIM-16, DDPM-100...) into 1-4 calls.

Method: progressive distillation (Salimans & Ho 2022) in one round, with their x-prediction
student. The teacher's deterministic sampler (DDIM with K steps; for a DDPM teacher, the DDIM
sampler of the same network, i.e. its probability-flow ODE) maps initial noise ``x_T`` and the
encoder's ``cond`` to a clean chunk ``x0*``. The student is a copy of the teacher's denoiser
(initialised from its weights) that predicts the clean chunk (``prediction_type: sample``) on
N "trailing" timesteps (the first call at the last train timestep, where the input is pure
noise). Its N-step rollout from the same ``x_T`` is unrolled with gradients and every step's
clean-chunk prediction is regressed (MSE) onto ``x0*``: if every prediction equals ``x0*``,
each DDIM update lands exactly on the teacher's ODE solution's noise level, so early steps are
supervised as well as the last, and the student is trained on the states it visits itself.

Why not the alternatives (measured on ``zoo:diffusion-policy:tiny``):

* An epsilon-predicting student on the zoo's "leading" grid (75, 50, 25, 0) reached mean-abs
  0.164 vs 0.186 of the action range for N = 4, but N = 1 and 2 could not beat their
  undistilled baselines: the last leading step is t = 0, where epsilon barely enters the
  update, and at high noise x0 = (x - sqrt(1 - a) eps) / sqrt(a) amplifies any epsilon error
  by 1 / sqrt(a) (2000x at t = 99). Salimans & Ho name exactly this and switch to x/v
  prediction; Lin et al. (2024) add trailing spacing so the first step sees pure noise.
* Textbook progressive rounds (halve the steps each round, targets from the teacher's own
  states) stalled: each round's small errors compound along the student's own trajectory,
  which those targets never show it.
* Consistency distillation (Consistency Policy) needs a target network and far more than
  CPU-minutes of steps.

The student is trained with the shared loop in :mod:`edgekit.distill.train` (AdamW, warm-up +
cosine, EMA, clipping, DDP). The chunk's x0 clip is applied as the program applies it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill.train import Batch, Objective
from edgekit.loop import Arrays, LoopProgram, TickContext, build_program
from edgekit.spec import ProgramSpec

SAMPLER = "diffusion-sampler"


def teacher_params(params: dict[str, Any], steps: int) -> dict[str, Any]:
    """The deterministic teacher sampler: DDIM with ``steps`` steps on the teacher's grid."""
    return {**params, "scheduler": "ddim", "num_inference_steps": steps}


def student_params(params: dict[str, Any], steps: int) -> dict[str, Any]:
    """The student's sampler: DDIM, ``steps`` calls, trailing spacing, clean-sample output."""
    return {
        **params,
        "scheduler": "ddim",
        "num_inference_steps": steps,
        "timestep_spacing": "trailing",
        "prediction_type": "sample",
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
    """``DiffusionSamplerProgram.step`` (DDIM) in torch: returns (next sample, clipped x0)."""
    c0, c1, c_x0, c_eps = (coefs[k] for k in range(4))
    if prediction == "epsilon":
        eps, x0 = out, (c0 * x - c1 * out).clamp(-1.0, 1.0)
    else:
        eps, x0 = c0 * x - c1 * out, out.clamp(-1.0, 1.0)
    return c_x0 * x0 + c_eps * eps, x0


def encode(encoder: nn.Module, observations: list[Arrays], batch: int = 32) -> torch.Tensor:
    """``cond`` for each observation, pre-processed exactly as the program's tick does."""
    out = []
    for i in range(0, len(observations), batch):
        chunk = observations[i : i + batch]
        images = []
        for obs in chunk:
            image = obs["image"].transpose(0, 3, 1, 2)[None].astype(np.float32)
            images.append(image * np.float32(1 / 127.5) - np.float32(1.0))
        proprio = np.stack([obs["proprio"].astype(np.float32) for obs in chunk])
        with torch.inference_mode():
            cond = encoder(torch.from_numpy(np.concatenate(images)), torch.from_numpy(proprio))
        out.append(cond.clone())
    return torch.cat(out)


def augment(rows: torch.Tensor, generator: torch.Generator, jitter: float) -> torch.Tensor:
    """Mixup of half the rows with another row, then Gaussian jitter at ``jitter`` x the std.

    Targets are always recomputed by the teacher on the augmented input, so this widens the
    input distribution the student sees around the few stored samples without inventing labels.
    """
    b = rows.shape[0]
    if jitter <= 0 or b < 2:
        return rows
    other = rows[torch.randint(0, b, (b,), generator=generator)]
    mix = (torch.rand(b, generator=generator) < 0.5).float()
    lam = torch.rand(b, generator=generator) * mix
    shape = (b,) + (1,) * (rows.dim() - 1)
    out = rows + lam.view(shape) * (other - rows)
    std = rows.float().std() if b > 1 else torch.tensor(1.0)
    return out + jitter * std * torch.randn(rows.shape, generator=generator)


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


class StepObjective(Objective):
    """Teacher DDIM-K chunk vs the student's N-step rollout (see module docstring)."""

    t_coefs: torch.Tensor
    s_coefs: torch.Tensor

    def __init__(
        self,
        teacher: nn.Module,
        conds: torch.Tensor,
        params: dict[str, Any],
        student_steps: int,
        teacher_steps: int,
        jitter: float = 0.05,
    ) -> None:
        super().__init__()
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        # dropout stays off (eval mode): the rollout must be a function of the batch only
        self.student = copy.deepcopy(teacher).eval().requires_grad_(True)
        self.conds = conds
        self.jitter = jitter
        self.shape = (int(params["horizon"]), int(params["action_dim"]))
        self.t_steps, t_coefs = step_coefs(sampler_program(teacher_params(params, teacher_steps)))
        self.s_steps, s_coefs = step_coefs(sampler_program(student_params(params, student_steps)))
        self.register_buffer("t_coefs", t_coefs, persistent=False)
        self.register_buffer("s_coefs", s_coefs, persistent=False)

    def sample(self, generator: torch.Generator, batch: int) -> Batch:
        idx = torch.randint(0, len(self.conds), (batch,), generator=generator)
        cond = augment(self.conds[idx], generator, self.jitter)
        noise = torch.randn((batch, *self.shape), generator=generator)
        return {"x": noise, "cond": cond}

    @torch.no_grad()
    def teacher_chunk(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for i, t in enumerate(self.t_steps):
            eps = self.teacher(x, torch.full((x.shape[0],), float(t), device=x.device), cond)
            x, _ = ddim_step(x, eps, self.t_coefs[i], "epsilon")
        return x

    def forward(self, batch: Batch) -> torch.Tensor:
        x, cond = batch["x"], batch["cond"]
        target = self.teacher_chunk(x, cond)
        loss = torch.zeros((), device=x.device)
        for j, t in enumerate(self.s_steps):
            out = self.student(x, torch.full((x.shape[0],), float(t), device=x.device), cond)
            loss = loss + torch.mean((out - target) ** 2) / len(self.s_steps)
            x, _ = ddim_step(x, out, self.s_coefs[j], "sample")
        return loss


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
    g, r = np.stack(got).astype(np.float64), np.stack(ref).astype(np.float64)
    span = np.asarray(params["action_high"], np.float64) - np.asarray(
        params["action_low"], np.float64
    )
    err = np.abs(g - r) / span
    rel = float(np.linalg.norm(g - r)) / max(float(np.linalg.norm(r)), 1e-12)
    cos = float(np.sum(g * r) / max(float(np.linalg.norm(g) * np.linalg.norm(r)), 1e-300))
    return {
        "mean_abs": float(err.mean()),
        "max_abs": float(err.max()),
        "rel_l2": rel,
        "cosine": cos,
    }
