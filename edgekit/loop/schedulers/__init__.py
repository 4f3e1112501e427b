"""Diffusion and flow-matching sampler updates for the control tick, numpy only.

A diffusion policy's tick calls its denoiser K times; between calls the sampler turns the
network output into the next sample. This package is that update for diffusers' DDPM, DDIM
(eta=0), DPM-Solver++ (order 1 or 2) and flow-matching Euler schedulers, configured from the
model's ``scheduler_config.json`` and matching diffusers numerically (same timesteps, same
update to float32 rounding; see ``tests/test_schedulers.py``). No torch, no diffusers::

    sched = make_scheduler(read_scheduler_config("scheduler_config.json"), 10)
    sched.begin()
    x = rng.standard_normal(shape).astype(np.float32) * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        x = sched.step(denoiser(x, t), i, x, rng)

* :mod:`~edgekit.loop.schedulers.config`: the supported options (:data:`SUPPORTED`) and checks.
* :mod:`~edgekit.loop.schedulers.samplers`: the schedules and the updates.
* :mod:`~edgekit.loop.schedulers.custom`: explicit timesteps / sigmas (a step student's grid).
"""

from __future__ import annotations

from typing import Any

from edgekit.loop.schedulers.config import CLASSES, SUPPORTED, read_scheduler_config, resolve
from edgekit.loop.schedulers.samplers import Scheduler, build


def make_scheduler(
    config: dict[str, Any],
    num_inference_steps: int,
    timesteps: list[int] | None = None,
    sigmas: list[float] | None = None,
) -> Scheduler:
    """The scheduler for a diffusers config dict (``_class_name``) or the short form
    (``{"type": "ddpm" | "ddim" | "dpmsolver++" | "flow-euler", ...}``) and K inference steps;
    missing keys take diffusers' defaults for that class. ``timesteps`` (DDPM, DDIM) or
    ``sigmas`` (flow-euler): an explicit grid of K entries instead of the spacing's
    (:mod:`~edgekit.loop.schedulers.custom`).

    Raises :class:`~edgekit.errors.BadInputError` naming the key for an unsupported option, a
    ``num_inference_steps`` outside ``[1, num_train_timesteps]`` or a bad explicit grid.
    """
    source = "scheduler config"
    kind, options = resolve(config, source)
    return build(kind, options, num_inference_steps, source, timesteps, sigmas)


__all__ = [
    "CLASSES",
    "SUPPORTED",
    "Scheduler",
    "make_scheduler",
    "read_scheduler_config",
]
