"""Collect each network's real inputs by running the FP32 loop program on observations.

A diffusion denoiser is calibrated on the inputs it sees at every denoising step, a world
model's imagination step on the states the planner rolls out: the loop program, run on
calibration observations, produces them. Calibrating a network on random tensors instead
silently ruins accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgekit.loop import Arrays, LoopProgram, Runtime, TickContext
from edgekit.spec import TensorSpec

Feeds = dict[str, list[Arrays]]  # network name -> list of feed dicts


class RecordingRuntime:
    """Wraps a runtime and keeps a copy of every feed it is given, per network."""

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner
        self.name = f"recording({inner.name})"
        self.feeds: Feeds = {}

    def run(self, network: str, feeds: Arrays) -> Arrays:
        self.feeds.setdefault(network, []).append({k: v.copy() for k, v in feeds.items()})
        return self.inner.run(network, feeds)


def run_episode(
    program: LoopProgram, runtime: Runtime, observations: list[Arrays], seed: int = 0
) -> list[Arrays]:
    """Run the observations as one episode (in order, from a reset); return every tick's output."""
    program.reset(seed)
    ctx = TickContext(runtime)
    outs = []
    for obs in observations:
        ctx.clear()
        outs.append(program.tick(ctx, obs))
    return outs


def obs_match(spec: tuple[TensorSpec, ...], obs: Arrays) -> bool:
    """Does this observation fit a program's observation spec (names, shapes, dtypes)?"""
    if {t.name for t in spec} != set(obs):
        return False
    return all(
        tuple(obs[t.name].shape) == tuple(t.shape) and obs[t.name].dtype == np.dtype(t.dtype)
        for t in spec
    )


def capture(
    programs: dict[str, LoopProgram],
    runtime: Runtime,
    observations: list[Arrays],
    max_feeds: int,
    seed: int = 0,
) -> tuple[Feeds, list[str]]:
    """Feeds per network from every program whose observations match; evenly subsampled.

    Returns the feeds and the names of the programs that ran.
    """
    rec = RecordingRuntime(runtime)
    ran = []
    for name, program in programs.items():
        if observations and obs_match(program.observation_spec(), observations[0]):
            run_episode(program, rec, observations, seed)
            ran.append(name)
    return {net: subsample(f, max_feeds) for net, f in rec.feeds.items()}, ran


def subsample(items: list[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return items
    idx = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in idx]


class FeedReader:
    """onnxruntime ``CalibrationDataReader`` over captured feeds; ``on_next()`` is called for
    every feed handed out (calibration progress)."""

    def __init__(self, feeds: list[Arrays], on_next: Callable[[], None] | None = None) -> None:
        self.feeds = feeds
        self.on_next = on_next
        self._it = iter(feeds)

    def get_next(self) -> Arrays | None:
        feed = next(self._it, None)
        if feed is not None and self.on_next is not None:
            self.on_next()
        return feed

    def rewind(self) -> None:
        self._it = iter(self.feeds)

    def __len__(self) -> int:
        return len(self.feeds)
