"""The step-distillation objective both step students share: the zoo's ``diffusion-sampler``
(:mod:`.steps`) and a declared tick's denoise block (:mod:`.steps_declared`).

The teacher's deterministic sampler (K calls) and the student's (N calls, on every (K/N)-th
point of the teacher's grid, the last going to the clean sample) are each a
:class:`TorchSampler`: the timesteps the network sees and one update per step, in torch, with
its per-step float32 coefficients. From the same initial noise and conditioning, the student's
N-step rollout is unrolled with gradients and its state after step ``j`` is regressed (MSE) onto
the teacher's state after ``j * (K // N)`` steps (both stand at the same noise level there), the
last onto the teacher's final sample. The student starts as a copy of the teacher's denoiser.

With ``pool`` > 0 the teacher's rollouts are made once, for ``pool`` (noise, conditioning)
rows drawn as batches are, and every batch is drawn from them (Luhman & Luhman 2021 train their
one-step student on such a fixed set of teacher samples). A teacher rollout costs K network
calls against the student's N (plus its backward), so a pool buys several times more optimiser
steps for the same CPU time, at the price of a finite set of noises.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.distill.train import Batch, Objective
from edgekit.errors import BadInputError

#: (sample, network output, the step's coefficient row) -> the next sample
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
#: (network, sample, timestep, conditioning inputs by name) -> the network's output
CallFn = Callable[[nn.Module, torch.Tensor, float, dict[str, torch.Tensor]], torch.Tensor]
COND = "cond:"  # batch keys of conditioning inputs (the noise is "x")
TARGET = "target:"  # batch keys of precomputed teacher states (a pooled batch)
POOL_BYTES = 2 << 30  # the most a teacher pool may hold


@dataclass
class TorchSampler:
    """A deterministic sampler in torch: ``timesteps[i]`` is fed at step ``i``, whose update is
    ``step(x, out, coefs[i])``."""

    timesteps: list[float]
    coefs: torch.Tensor  # (steps, m) float32
    step: StepFn


def ddim_update(
    x: torch.Tensor, out: torch.Tensor, c: torch.Tensor, prediction: str, clip: float | None
) -> torch.Tensor:
    """DDIM (eta=0) as :class:`edgekit.loop.schedulers` does it, with ``c`` = (sqrt(a_t),
    sqrt(1 - a_t), sqrt(a_prev), sqrt(1 - a_prev)); the x0 clip as diffusers' clip_sample."""
    sa, sb, sp, sq = c[0], c[1], c[2], c[3]
    if prediction == "epsilon":
        x0, eps = (x - sb * out) / sa, out
    elif prediction == "sample":
        x0, eps = out, (x - sa * out) / sb
    else:  # v_prediction
        x0, eps = sa * x - sb * out, sa * out + sb * x
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
    return sp * x0 + sq * eps


def euler_update(x: torch.Tensor, out: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Flow-matching Euler: ``x + (sigma_next - sigma) * v`` with ``c`` = (sigma_next - sigma,)."""
    return x + c[0] * out


def augment(
    rows: dict[str, torch.Tensor], generator: torch.Generator, jitter: float
) -> dict[str, torch.Tensor]:
    """Mixup of half the rows with another row (the same partner and weight for every input),
    then Gaussian jitter at ``jitter`` x each input's std; integer inputs stay as they are.

    Targets are always recomputed by the teacher on the augmented input, so this widens the
    input distribution the student sees around the few stored samples without inventing labels.
    """
    first = next(iter(rows.values()))
    b = first.shape[0]
    if jitter <= 0 or b < 2:
        return rows
    pick = torch.randint(0, b, (b,), generator=generator)
    mix = (torch.rand(b, generator=generator) < 0.5).float()
    lam = torch.rand(b, generator=generator) * mix
    out = {}
    for name, r in rows.items():
        if not r.is_floating_point():
            out[name] = r
            continue
        shape = (b,) + (1,) * (r.dim() - 1)
        mixed = r + lam.view(shape) * (r[pick] - r)
        std = r.float().std()
        out[name] = mixed + jitter * std * torch.randn(r.shape, generator=generator)
    return out


class RolloutObjective(Objective):
    """Teacher K-step states vs the student's N-step rollout (see the module docstring).

    ``conds``: the conditioning inputs the denoiser saw on the training observations (rows);
    ``shape``: the sample's shape without the batch axis; ``span``: what one unit of the held-out
    error is (the sample's range; None: each feature's range in the teacher's samples).
    """

    t_coefs: torch.Tensor
    s_coefs: torch.Tensor

    def __init__(
        self,
        teacher: nn.Module,
        call: CallFn,
        conds: dict[str, torch.Tensor],
        shape: tuple[int, ...],
        teacher_sampler: TorchSampler,
        student_sampler: TorchSampler,
        jitter: float = 0.05,
        span: float | None = 2.0,
        pool: int = 0,
        pool_seed: int = 0,
    ) -> None:
        super().__init__()
        self.pool, self.pool_seed = pool, pool_seed
        self._pool: Batch | None = None
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        # dropout stays off (eval mode): the rollout must be a function of the batch only
        self.student = copy.deepcopy(teacher).eval().requires_grad_(True)
        self.call = call
        self.conds = conds
        self.shape = shape
        self.jitter = jitter
        self.span = span
        self.t_steps, self.s_steps = teacher_sampler.timesteps, student_sampler.timesteps
        self.t_step, self.s_step = teacher_sampler.step, student_sampler.step
        self.stride = len(self.t_steps) // len(self.s_steps)
        self.holdout: Batch = {}  # {"x", "cond:<name>"...} for evaluate()
        if self.pool_bytes() > POOL_BYTES:
            row = self.pool_bytes() / pool
            raise BadInputError(
                f"--teacher-pool {pool}: its rows would hold {self.pool_bytes() / 2**30:.1f} GiB "
                f"(noise, conditioning, teacher states); use at most {int(POOL_BYTES // row)}"
            )
        self.register_buffer("t_coefs", teacher_sampler.coefs, persistent=False)
        self.register_buffer("s_coefs", student_sampler.coefs, persistent=False)

    def rows(self) -> int:
        return len(next(iter(self.conds.values())))

    def batch(self, x: torch.Tensor, conds: dict[str, torch.Tensor]) -> Batch:
        return {"x": x, **{COND + k: v for k, v in conds.items()}}

    @staticmethod
    def conditioning(batch: Batch) -> dict[str, torch.Tensor]:
        return {k[len(COND) :]: v for k, v in batch.items() if k.startswith(COND)}

    def fresh(self, generator: torch.Generator, batch: int) -> Batch:
        """``batch`` rows of new noise and (augmented) stored conditioning."""
        idx = torch.randint(0, self.rows(), (batch,), generator=generator)
        conds = augment({k: v[idx] for k, v in self.conds.items()}, generator, self.jitter)
        noise = torch.randn((batch, *self.shape), generator=generator)
        return self.batch(noise, conds)

    def pool_bytes(self) -> int:
        """What a pool of ``self.pool`` rows holds (noise, conditioning and teacher states)."""
        row = sum(v[0].numel() * v.element_size() for v in self.conds.values())
        row += 4 * math.prod(self.shape) * (1 + len(self.s_steps))
        return row * self.pool

    def sample(self, generator: torch.Generator, batch: int) -> Batch:
        if not self.pool:
            return self.fresh(generator, batch)
        if self._pool is None:
            self._pool = self._make_pool()
        idx = torch.randint(0, self.pool, (batch,), generator=generator)
        return {k: v[idx] for k, v in self._pool.items()}

    @torch.no_grad()
    def _make_pool(self, chunk: int = 64) -> Batch:
        """The teacher's rollouts for ``pool`` rows, from their own seed (a resumed run makes
        the same pool)."""
        gen = torch.Generator().manual_seed(self.pool_seed)
        parts: list[Batch] = []
        for start in range(0, self.pool, chunk):
            b = self.fresh(gen, min(chunk, self.pool - start))
            states = self.teacher_states(b["x"], self.conditioning(b))
            parts.append({**b, **{f"{TARGET}{j}": s for j, s in enumerate(states)}})
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    @torch.no_grad()
    def teacher_states(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The teacher's states where the student's steps land: after steps ``j * (K // N)``
        for ``j = 1..N-1`` (the student's next timesteps), then its final sample."""
        marks = {j * self.stride for j in range(1, len(self.s_steps))}
        states = []
        for i, t in enumerate(self.t_steps):
            x = self.t_step(x, self.call(self.teacher, x, t, cond), self.t_coefs[i])
            if i + 1 in marks:
                states.append(x)
        return [*states, x]

    def student_states(self, x: torch.Tensor, cond: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The student's state after each of its N steps (with gradients when enabled)."""
        states = []
        for j, t in enumerate(self.s_steps):
            x = self.s_step(x, self.call(self.student, x, t, cond), self.s_coefs[j])
            states.append(x)
        return states

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean-abs error of the student's final sample vs the teacher's on the held-out rows,
        in units of ``span``."""
        if not self.holdout:
            return None
        x, cond = self.holdout["x"], self.conditioning(self.holdout)
        target = self.teacher_states(x, cond)[-1]
        got = self.student_states(x, cond)[-1]
        if self.span is not None:
            span: torch.Tensor | float = self.span
        else:
            flat = target.reshape(-1, target.shape[-1])
            span = (flat.amax(0) - flat.amin(0)).clamp_min(1e-12)
        return float(torch.mean(torch.abs(got - target) / span))

    def forward(self, batch: Batch) -> torch.Tensor:
        x, cond = batch["x"], self.conditioning(batch)
        if f"{TARGET}0" in batch:
            targets = [batch[f"{TARGET}{j}"] for j in range(len(self.s_steps))]
        else:
            targets = self.teacher_states(x, cond)
        loss = torch.zeros((), device=x.device)
        for state, target in zip(self.student_states(x, cond), targets, strict=True):
            loss = loss + torch.mean((state - target) ** 2) / len(self.s_steps)
        return loss


def result_error(got: list[np.ndarray], ref: list[np.ndarray], span: Any) -> dict[str, float]:
    """Error in units of ``span`` (per feature, last axis), plus relative L2 and cosine."""
    g, r = np.stack(got).astype(np.float64), np.stack(ref).astype(np.float64)
    err = np.abs(g - r) / span
    rel = float(np.linalg.norm(g - r)) / max(float(np.linalg.norm(r)), 1e-12)
    cos = float(np.sum(g * r) / max(float(np.linalg.norm(g) * np.linalg.norm(r)), 1e-300))
    return {
        "mean_abs": float(err.mean()),
        "max_abs": float(err.max()),
        "rel_l2": rel,
        "cosine": cos,
    }
