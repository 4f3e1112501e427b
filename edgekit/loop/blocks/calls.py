"""Blocks that call networks: one call, and the denoising loop of a diffusion / flow policy.

Arrays in the tick's state are batch-free; a call feeds them with a leading batch axis of 1
and stores its outputs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import PrivateAttr, model_validator

from edgekit.loop.blocks.base import Block, BlockError, check_io, need, network
from edgekit.loop.program import Arrays, TickContext
from edgekit.spec import NetworkSpec

if TYPE_CHECKING:
    from edgekit.loop.schedulers import Scheduler


class Call(Block):
    """``network`` once: ``inputs`` maps its input names to state names, ``outputs`` its
    output names to state names (default: every output under its own name)."""

    block: Literal["call"]
    network: str
    inputs: dict[str, str]
    outputs: dict[str, str] | None = None
    calls_network = True

    def reads(self) -> list[str]:
        return list(self.inputs.values())

    def writes(self) -> list[str]:
        return list((self.outputs or {}).values())

    def calls(self) -> dict[str, int]:
        return {self.network: 1}

    def check(self, networks: dict[str, NetworkSpec], where: str) -> None:
        net = network(networks, self.network, where)
        if self.outputs is None:
            self.outputs = {n: n for n in net.output_names}
        check_io(net, list(self.inputs), list(self.outputs), where)

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        feeds = {k: need(state, v, f"call {self.network}")[None] for k, v in self.inputs.items()}
        out = ctx.call(self.network, feeds)
        for k, v in (self.outputs or {k: k for k in out}).items():
            state[v] = out[k][0]


class Denoise(Block):
    """The sampler: start from Gaussian noise of ``shape`` (batch-free), call ``network``
    once per inference step with the noisy sample, the step's timestep and the conditioning
    ``inputs``, and update the sample with the scheduler's step (DDPM, DDIM, DPM-Solver++,
    Euler flow matching; configured as diffusers' ``scheduler_config.json``). The clean
    sample goes to ``result``.

    ``sample``/``timestep``: the network's input names for the noisy sample and the timestep;
    ``output``: its output (noise, sample, v or velocity, as ``prediction_type`` says; a
    network with one output needs no name).

    ``timesteps`` (DDPM, DDIM) or ``sigmas`` (flow-matching Euler, before the shift): an
    explicit grid of ``num_inference_steps`` entries instead of the config's spacing, as
    diffusers' ``set_timesteps(timesteps=...)`` / ``set_timesteps(sigmas=...)`` take it; with
    DDIM each step goes to the next timestep and the last to the clean sample (a step-distilled
    student samples on every k-th timestep of its teacher's grid).
    """

    block: Literal["denoise"]
    network: str
    shape: list[int]
    sample: str = "sample"
    timestep: str = "timestep"
    timestep_dtype: Literal["float32", "int64"] = "float32"
    timestep_shape: list[int] = [1]
    inputs: dict[str, str] = {}
    output: str = "noise_pred"
    result: str = "actions"
    scheduler: dict[str, Any]
    num_inference_steps: int
    timesteps: list[int] | None = None
    sigmas: list[float] | None = None
    calls_network = True
    host_stage = "scheduler"
    _sched: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _build(self) -> Denoise:
        from edgekit.loop.schedulers import make_scheduler

        self._sched = make_scheduler(
            self.scheduler, self.num_inference_steps, self.timesteps, self.sigmas
        )
        return self

    @property
    def sampler(self) -> Scheduler:
        """The block's :class:`~edgekit.loop.schedulers.Scheduler` (timesteps, update)."""
        return self._sched

    def reads(self) -> list[str]:
        return list(self.inputs.values())

    def writes(self) -> list[str]:
        return [self.result]

    def calls(self) -> dict[str, int]:
        return {self.network: len(self._sched.timesteps)}

    def check(self, networks: dict[str, NetworkSpec], where: str) -> None:
        net = network(networks, self.network, where)
        if self.output not in net.output_names and len(net.output_names) == 1:
            self.output = net.output_names[0]  # a module returning one tensor: "output"
        check_io(net, [self.sample, self.timestep, *self.inputs], [self.output], where)
        spec = next(t for t in net.inputs if t.name == self.sample)
        if list(spec.shape[1:]) != self.shape and not any(
            isinstance(d, str) for d in spec.shape[1:]
        ):
            raise BlockError(
                f"{where}.shape: {self.shape} but network {net.name!r} input {self.sample!r} "
                f"is {list(spec.shape)}"
            )
        t = next(t for t in net.inputs if t.name == self.timestep)
        self.timestep_shape = [1 if isinstance(d, str) else int(d) for d in t.shape]
        self.timestep_dtype = "int64" if np.dtype(t.dtype).kind in "iu" else "float32"

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        sched = self._sched
        cond = {k: need(state, v, f"denoise {self.network}")[None] for k, v in self.inputs.items()}
        with ctx.host(self.host_stage):
            sched.begin()
            x = rng.standard_normal((1, *self.shape)).astype(np.float32)
            x *= np.float32(sched.init_noise_sigma)
        for i, t in enumerate(sched.timesteps):
            step_t = np.full(self.timestep_shape, t, self.timestep_dtype)
            feeds = {**cond, self.sample: x, self.timestep: step_t}
            out = ctx.call(self.network, feeds)[self.output]
            with ctx.host(self.host_stage):
                x = sched.step(out, i, x, rng)
        state[self.result] = x[0]


class Rerank(Block):
    """Score N candidates with ``network`` in one call (batch N) and keep the best.

    ``candidates``: a state array whose first axis is the N candidates (imagined futures,
    proposed action chunks...), fed as the network's input ``candidate``; ``inputs``: other
    network inputs from batch-free state arrays (the instruction...), repeated for every
    candidate; ``score``: the network's output, one number per candidate (default: its first
    output). The argmax goes to ``index`` (an int64 scalar), that candidate to ``result``, and,
    when ``scores`` names one, every score to the state.
    """

    block: Literal["rerank"]
    network: str
    candidates: str
    candidate: str = "candidates"
    inputs: dict[str, str] = {}
    score: str | None = None
    result: str = "best"
    index: str = "best_index"
    scores: str | None = None
    calls_network = True
    host_stage = "rerank"

    def reads(self) -> list[str]:
        return [self.candidates, *self.inputs.values()]

    def writes(self) -> list[str]:
        return [self.result, self.index] + ([self.scores] if self.scores else [])

    def calls(self) -> dict[str, int]:
        return {self.network: 1}

    def check(self, networks: dict[str, NetworkSpec], where: str) -> None:
        net = network(networks, self.network, where)
        self.score = self.score or net.output_names[0]
        check_io(net, [self.candidate, *self.inputs], [self.score], where)
        cand = next(t for t in net.inputs if t.name == self.candidate)
        if not cand.shape or not isinstance(cand.shape[0], str):
            raise BlockError(
                f"{where}.candidate: network {net.name!r} input {self.candidate!r} is "
                f"{list(cand.shape)}; the candidates are its batch axis, which must be dynamic"
            )
        out = next(t for t in net.outputs if t.name == self.score)
        if list(out.shape[1:]) not in ([], [1]):
            raise BlockError(
                f"{where}.score: network {net.name!r} output {self.score!r} is "
                f"{list(out.shape)}; one score per candidate: [batch] or [batch, 1]"
            )

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        cands = need(state, self.candidates, f"rerank {self.network}")
        n = len(cands)
        feeds = {self.candidate: cands}
        for k, v in self.inputs.items():
            feeds[k] = np.repeat(need(state, v, f"rerank {self.network}")[None], n, axis=0)
        scores = ctx.call(self.network, feeds)[self.score or "output"]
        with ctx.host(self.host_stage):
            scores = scores.reshape(n).astype(np.float32)
            best = int(np.argmax(scores))
            state[self.index] = np.asarray(best, np.int64)
            state[self.result] = cands[best]
            if self.scores:
                state[self.scores] = scores
