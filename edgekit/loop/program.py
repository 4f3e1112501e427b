"""Control-loop programs: what one tick of the robot's loop runs (the program base and registry).

A tick is the whole thing the robot waits for: host-side pre-processing of the raw observation,
every network call the loop needs (an encoder once, a denoiser K times, an imagination step H
times...), the host-side maths between calls (scheduler updates, sampling, reranking) and the
post-processing that turns network outputs into commands. Programs are written once against
:class:`TickContext`, so the same tick runs on onnxruntime, on eager PyTorch, and under a FLOP
counter, and is timed per stage by whoever drives it.

Programs are registered by name; a manifest stores ``{"name": ..., "params": {...}}`` and
``edgekit.models.build_program`` rebuilds the program from it (the model kinds register theirs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter_ns
from typing import Any, ClassVar, Protocol

import numpy as np

from edgekit.registry import Registry
from edgekit.spec import NetworkSpec, TensorSpec

Arrays = dict[str, np.ndarray]


class Runtime(Protocol):
    """Runs one named network on numpy feeds (onnxruntime, torch, TensorRT...)."""

    name: str

    def run(self, network: str, feeds: Arrays) -> Arrays: ...


class TickContext:
    """Handed to a program each tick: calls networks and times every stage.

    ``stage_ns`` accumulates nanoseconds per stage within the current tick: one entry per network
    name (all its calls together) and one per host stage. ``calls`` counts network calls and
    ``host_calls`` host-stage entries (a scheduler update runs once per denoising step).
    """

    __slots__ = ("calls", "host_calls", "runtime", "stage_ns")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stage_ns: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.host_calls: dict[str, int] = {}

    def call(self, network: str, feeds: Arrays) -> Arrays:
        t0 = perf_counter_ns()
        out = self.runtime.run(network, feeds)
        self.stage_ns[network] = self.stage_ns.get(network, 0) + perf_counter_ns() - t0
        self.calls[network] = self.calls.get(network, 0) + 1
        return out

    @contextmanager
    def host(self, stage: str) -> Iterator[None]:
        t0 = perf_counter_ns()
        try:
            yield
        finally:
            self.stage_ns[stage] = self.stage_ns.get(stage, 0) + perf_counter_ns() - t0
            self.host_calls[stage] = self.host_calls.get(stage, 0) + 1

    def clear(self) -> None:
        self.stage_ns = {}
        self.calls = {}
        self.host_calls = {}


class LoopProgram:
    """Base class. Subclasses set ``name`` and implement the methods below.

    A program is stateful like the robot's loop: ``reset(seed)`` starts an episode (recurrent
    state, history buffers, the action chunk queue, a seeded RNG for sampling noise), then
    ``tick(ctx, obs)`` runs one tick and returns its outputs (the commands sent to the robot
    and anything worth comparing). Given the same seed and observations, two runtimes must see
    the same noise, so all randomness comes from ``self.rng``.
    """

    name: ClassVar[str] = ""
    host_stages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = dict(params)
        self.rng = np.random.default_rng(0)

    @classmethod
    def check_networks(
        cls, params: dict[str, Any], networks: dict[str, NetworkSpec], where: str
    ) -> None:
        """Refuse networks whose io this program cannot wire together (a state one network
        hands the next with another shape...): a one-line ``BadInputError``. Called when a
        model is loaded (``edgekit.models.check_networks``); the default accepts any."""

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        """The raw observation the robot hands the loop each tick (batch-free shapes)."""
        raise NotImplementedError

    def calls_per_tick(self) -> dict[str, int]:
        """Network name -> number of calls in one tick."""
        raise NotImplementedError

    def reset(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        raise NotImplementedError

    def sample_observation(self, rng: np.random.Generator) -> Arrays:
        return {t.name: t.sample(rng, {}) for t in self.observation_spec()}

    def describe(self) -> str:
        calls = ", ".join(f"{n} x{k}" for n, k in self.calls_per_tick().items())
        host = f"; host: {', '.join(self.host_stages)}" if self.host_stages else ""
        return f"{self.name}: {calls}{host}"


PROGRAMS: Registry[type[LoopProgram]] = Registry("loop program")


def register_program(cls: type[LoopProgram]) -> type[LoopProgram]:
    PROGRAMS.add(cls.name, cls)
    return cls


@register_program
class SingleCall(LoopProgram):
    """One network, called once per tick on the observation as given (user models, ONNX files).

    params: ``network`` (name), ``inputs`` (list of TensorSpec dicts), ``dims`` (sizes for
    dynamic axes, default 1 each).
    """

    name = "single-call"

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        dims = self.params.get("dims", {})
        specs = []
        for d in self.params["inputs"]:
            t = TensorSpec.from_dict(d)
            shape = tuple(dims.get(s, 1) if isinstance(s, str) else s for s in t.shape)
            specs.append(TensorSpec(t.name, shape, t.dtype, t.sampler, t.low, t.high))
        return tuple(specs)

    def calls_per_tick(self) -> dict[str, int]:
        return {self.params["network"]: 1}

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        return ctx.call(self.params["network"], obs)
