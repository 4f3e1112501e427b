"""The training loop every distillation shares: AdamW, warm-up + cosine, EMA, clipping, DDP.

An :class:`Objective` is an ``nn.Module`` that owns the frozen teacher, the trainable student
(and any projection heads) and its data. ``sample(generator, batch)`` draws one global batch
(every rank draws the same one); ``forward(batch)`` returns the mean loss over the rows given.
The trainer slices each rank's part, wraps the objective in DistributedDataParallel when
running under torchrun, checkpoints at intervals (rank 0) and can resume exactly: the same
seed and settings give the same student, interrupted or not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from edgekit.distill import checkpoint
from edgekit.distill.dist import DistContext

Batch = dict[str, torch.Tensor]


class Objective(nn.Module):
    """A teacher, a student and the loss between them (see module docstring)."""

    def sample(self, generator: torch.Generator, batch: int) -> Batch:
        raise NotImplementedError

    def forward(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self) -> float | None:
        """Held-out error of the current weights (for the progress bar), None if no held-out
        data was given."""
        return None


@dataclass
class TrainConfig:
    """Optimiser settings; ``warmup`` in steps, ``ema`` is the cap of the EMA decay."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-4
    warmup: int = 20
    ema: float = 0.999
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 100


@dataclass
class TrainResult:
    history: list[float] = field(default_factory=list)
    resumed_from: int = 0  # step the run continued from (0: a fresh start)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to the base LR, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def trainable(objective: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in objective.named_parameters() if p.requires_grad}


def train(
    objective: Objective,
    config: TrainConfig,
    dist: DistContext,
    *,
    ckpt_dir: Path | None = None,
    resume: bool = False,
    settings_hash: str = "",
    progress: Callable[[int, dict[str, float]], None] | None = None,
    eval_every: int = 0,
) -> TrainResult:
    """Train ``objective``'s trainable parameters; on return they hold the EMA weights.

    ``progress(step, metrics)`` gets the loss every step and, every ``eval_every`` steps and at
    the end, ``holdout``: :meth:`Objective.evaluate` on the EMA weights (rank 0 only).
    """
    objective.to(dist.device)
    params = trainable(objective)
    names = list(params)
    opt = torch.optim.AdamW(list(params.values()), lr=config.lr, weight_decay=config.weight_decay)
    total = config.steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, config.warmup))
    ema = {n: p.detach().clone() for n, p in params.items()}
    gen = torch.Generator().manual_seed(config.seed)
    result = TrainResult()
    start = 0
    if resume and ckpt_dir is not None and checkpoint.exists(ckpt_dir):
        state = checkpoint.load(ckpt_dir, settings_hash)
        with torch.no_grad():
            for n in names:
                params[n].copy_(state.params[n])
                ema[n].copy_(state.ema[n])
        opt.load_state_dict(state.optimizer)
        start = state.step
        sched.last_epoch = start  # LambdaLR's state is its step count; the LR came with opt
        gen.set_state(state.generator)
        result.history = state.history
        result.resumed_from = start
    model: nn.Module = objective
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(objective)
    part = dist.shard(config.batch_size)
    for step in range(start, total):
        batch = objective.sample(gen, config.batch_size)
        local = {k: v[part].to(dist.device) for k, v in batch.items()}
        loss = model(local)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(list(params.values()), config.grad_clip)
        opt.step()
        sched.step()
        decay = min(config.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for n in names:
                ema[n].mul_(decay).add_(params[n].detach(), alpha=1 - decay)
        result.history.append(dist.mean(float(loss.detach())))
        done = step + 1
        if (
            ckpt_dir is not None
            and dist.is_main
            and config.checkpoint_every > 0
            and done % config.checkpoint_every == 0
            and done < total
        ):
            checkpoint.save(
                ckpt_dir,
                checkpoint.TrainState(
                    done,
                    {n: p.detach() for n, p in params.items()},
                    ema,
                    opt.state_dict(),
                    gen.get_state(),
                    result.history,
                ),
                settings_hash,
            )
        if progress is not None and dist.is_main:
            metrics = {"loss": result.history[-1]}
            if eval_every > 0 and (done % eval_every == 0 or done == total):
                value = _evaluate_ema(objective, params, ema)
                if value is not None:
                    metrics["holdout"] = value
            progress(done, metrics)
    with torch.no_grad():
        for n in names:
            params[n].copy_(ema[n])
    objective.to("cpu")
    return result


def _evaluate_ema(
    objective: Objective, params: dict[str, nn.Parameter], ema: dict[str, torch.Tensor]
) -> float | None:
    """Run ``objective.evaluate()`` with the EMA weights swapped in, then swap back."""
    with torch.no_grad():
        live = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            p.copy_(ema[n])
        try:
            return objective.evaluate()
        finally:
            for n, p in params.items():
                p.copy_(live[n])
