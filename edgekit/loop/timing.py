"""The timed loop: run a program's whole tick N times and record every stage.

The observation for each tick is prepared before the clock starts (it stands for the sensor
frame the robot hands the loop); the clock covers the whole tick: pre-processing, every network
call, the host maths in between and post-processing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from time import perf_counter_ns

import numpy as np

from edgekit import progress
from edgekit.errors import InputSpecError
from edgekit.loop import Arrays, LoopProgram, Runtime, TickContext


@dataclass
class TickSamples:
    tick_ns: np.ndarray  # (n,)
    stage_ns: dict[str, np.ndarray]  # stage -> (n,)
    calls: dict[str, int]  # stage (network or host step) -> entries in a planning tick
    planned: np.ndarray  # (n,) bool: the tick called a network (not only an action queue)
    warmup_ns: np.ndarray = field(
        default_factory=lambda: np.empty(0, np.int64)
    )  # warm-up, not in stats

    @property
    def planning_ns(self) -> np.ndarray:
        """The ticks that ran the networks: with an action-chunk queue, the others only pop
        a queued action, and comparing two models on those would compare nothing."""
        return self.tick_ns[self.planned] if self.planned.any() else self.tick_ns

    @property
    def plans_every(self) -> float:
        """Ticks per planning tick (1.0: every tick runs the networks)."""
        return len(self.tick_ns) / max(1, int(self.planned.sum()))


def timed_tick(program: LoopProgram, ctx: TickContext, obs: Arrays) -> tuple[Arrays, int]:
    """One whole tick and its wall-clock nanoseconds: the one way a tick is run and timed
    (bench's timed loop, eval's episodes and :class:`edgekit.Policy` all call it)."""
    t0 = perf_counter_ns()
    out = program.tick(ctx, obs)
    return out, perf_counter_ns() - t0


def check_first_tick(program: LoopProgram, runtime: Runtime, obs: Arrays) -> None:
    """Validate the observation and that the tick makes the calls its program declares."""
    for t in program.observation_spec():
        if t.name not in obs:
            raise InputSpecError(f"observation is missing {t.name!r}")
        t.check(obs[t.name], "observation")
    ctx = TickContext(runtime)
    program.tick(ctx, obs)
    if ctx.calls != program.calls_per_tick():
        raise RuntimeError(
            f"program {program.name} declared {program.calls_per_tick()} but made {ctx.calls}"
        )


def time_ticks(
    program: LoopProgram,
    runtime: Runtime,
    ticks: int,
    warmup: int,
    seed: int = 0,
    pool: int = 8,
) -> TickSamples:
    """Run ``warmup`` untimed ticks, then time ``ticks`` whole ticks.

    Progress: the warm-up is a task (unless the caller already runs a timed section); the
    timed ticks run in :func:`edgekit.progress.timed`, so no progress display redraws while
    they are measured, and nothing is reported from inside the timed loop.
    """
    program.reset(seed)
    rng = np.random.default_rng(seed + 1)
    observations = [program.sample_observation(rng) for _ in range(pool)]
    check_first_tick(program, runtime, observations[0])
    ctx = TickContext(runtime)
    warmup_ns = np.empty(warmup, dtype=np.int64)  # kept for the tick-index plot, not the stats
    shown = bool(warmup) and not progress.timing()
    with progress.task("warming up", total=warmup) if shown else contextlib.nullcontext() as task:
        for i in range(warmup):
            ctx.clear()
            _, warmup_ns[i] = timed_tick(program, ctx, observations[i % pool])
            if task is not None:
                task.advance()
    program.reset(seed)  # timed ticks start an episode: the first one plans (chunk queues)
    tick_ns = np.empty(ticks, dtype=np.int64)
    planned = np.zeros(ticks, dtype=bool)
    stage_ns: dict[str, np.ndarray] = {}
    calls: dict[str, int] = {}  # of the last tick that ran the networks (a planning tick)
    with progress.timed(f"timing {ticks} ticks"):
        for i in range(ticks):
            obs = observations[i % pool]
            ctx.clear()
            _, tick_ns[i] = timed_tick(program, ctx, obs)
            planned[i] = bool(ctx.calls)
            if planned[i] or not calls:
                calls = {**ctx.host_calls, **ctx.calls}
            for stage, ns in ctx.stage_ns.items():
                if stage not in stage_ns:
                    stage_ns[stage] = np.zeros(ticks, dtype=np.int64)
                stage_ns[stage][i] = ns
    return TickSamples(tick_ns, stage_ns, calls, planned, warmup_ns)
