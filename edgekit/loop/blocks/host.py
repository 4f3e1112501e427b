"""Host-side blocks: normalisation, observation history, recurrent state, the chunk queue.

Normalisation follows LeRobot's ``Normalize`` / ``Unnormalize`` (the stats a LeRobot policy
keeps): ``mean_std`` is ``(x - mean) / (std + 1e-8)``; ``min_max`` maps ``[min, max]`` to
``[-1, 1]`` as ``(x - min) / (max - min + 1e-8) * 2 - 1``. Stats broadcast over the tensor's
trailing axes (per feature).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np
from pydantic import PrivateAttr, model_validator

from edgekit.loop.blocks.base import Block, BlockError, need, stats
from edgekit.loop.program import Arrays, TickContext

EPS = 1e-8


class _Stats(Block):
    input: str
    output: str | None = None
    mode: Literal["mean_std", "min_max"] = "mean_std"
    mean: list[float] | float | None = None
    std: list[float] | float | None = None
    min: list[float] | float | None = None
    max: list[float] | float | None = None

    @model_validator(mode="after")
    def _has_its_stats(self) -> _Stats:
        a, b = ("mean", "std") if self.mode == "mean_std" else ("min", "max")
        other = ("min", "max") if self.mode == "mean_std" else ("mean", "std")
        if getattr(self, a) is None or getattr(self, b) is None:
            raise ValueError(f"mode {self.mode} needs {a} and {b}")
        if any(getattr(self, k) is not None for k in other):
            raise ValueError(f"mode {self.mode} takes {a}/{b}, not {other[0]}/{other[1]}")
        return self

    def reads(self) -> list[str]:
        return [self.input]

    def writes(self) -> list[str]:
        return [self.output or self.input]

    def _ab(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "mean_std":
            return stats(self.mean), stats(self.std)  # type: ignore[return-value]
        return stats(self.min), stats(self.max)  # type: ignore[return-value]


class Normalize(_Stats):
    """Observation (or any array) to the network's scale."""

    block: Literal["normalize"]
    host_stage = "normalize"

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        x = need(state, self.input, "normalize").astype(np.float32)
        a, b = self._ab()
        with ctx.host(self.host_stage):
            if self.mode == "mean_std":
                y = (x - a) / (b + np.float32(EPS))
            else:
                y = (x - a) / (b - a + np.float32(EPS)) * np.float32(2) - np.float32(1)
            state[self.output or self.input] = y.astype(np.float32)


class Unnormalize(_Stats):
    """Network output (actions) back to the robot's units."""

    block: Literal["unnormalize"]
    host_stage = "unnormalize"

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        x = need(state, self.input, "unnormalize").astype(np.float32)
        a, b = self._ab()
        with ctx.host(self.host_stage):
            if self.mode == "mean_std":
                y = x * b + a
            else:
                y = (x + np.float32(1)) / np.float32(2) * (b - a + np.float32(EPS)) + a
            state[self.output or self.input] = y.astype(np.float32)


class History(Block):
    """The last ``length`` values of ``input``, oldest first, stacked on a new first axis
    (at an episode's first tick the current value fills the history, as LeRobot does)."""

    block: Literal["history"]
    input: str
    length: int
    output: str
    host_stage = "history"
    _buf: deque[np.ndarray] = PrivateAttr(default_factory=deque)

    @model_validator(mode="after")
    def _positive(self) -> History:
        if self.length < 1:
            raise ValueError(f"length must be >= 1 (got {self.length})")
        return self

    def reads(self) -> list[str]:
        return [self.input]

    def writes(self) -> list[str]:
        return [self.output]

    def reset(self) -> None:
        self._buf = deque(maxlen=self.length)

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        x = need(state, self.input, "history")
        with ctx.host(self.host_stage):
            if not self._buf:
                self._buf = deque([x] * self.length, maxlen=self.length)
            else:
                self._buf.append(x)
            state[self.output] = np.stack(list(self._buf))


class Recurrent(Block):
    """Feed ``source`` (an output of this tick) back as ``output`` at the next tick; zeros of
    ``shape`` (batch-free) at an episode's first tick."""

    block: Literal["recurrent"]
    source: str
    output: str
    shape: list[int]
    dtype: str = "float32"
    host_stage = "recurrent"
    _held: np.ndarray | None = PrivateAttr(default=None)

    def writes(self) -> list[str]:
        return [self.output]

    def reset(self) -> None:
        self._held = None

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        held = self._held
        state[self.output] = held if held is not None else np.zeros(self.shape, self.dtype)

    def end_tick(self, state: Arrays) -> None:
        if self.source not in state:
            raise BlockError(f"recurrent: source {self.source!r} was not made this tick")
        self._held = np.array(state[self.source], self.dtype)


class Chunk(Block):
    """Action-chunk queue: when the queue is empty the tick runs its network blocks and queues
    ``execute`` rows of ``input`` (a chunk, from row ``start``); every tick pops one row into
    ``output``. Ticks that pop from a non-empty queue skip the network blocks before it (host
    blocks such as history still run, so the next prediction sees every observation)."""

    block: Literal["chunk"]
    input: str
    execute: int
    start: int = 0
    output: str = "action"
    host_stage = "queue"
    _queue: deque[np.ndarray] = PrivateAttr(default_factory=deque)

    @model_validator(mode="after")
    def _sizes(self) -> Chunk:
        if self.execute < 1 or self.start < 0:
            raise ValueError("execute must be >= 1 and start >= 0")
        return self

    def reads(self) -> list[str]:
        return [self.input]

    def writes(self) -> list[str]:
        return [self.output]

    @property
    def has_queued(self) -> bool:
        return bool(self._queue)

    def reset(self) -> None:
        self._queue = deque()

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        with ctx.host(self.host_stage):
            if not self._queue:
                chunk = need(state, self.input, "chunk")
                rows = chunk[self.start : self.start + self.execute]
                if len(rows) < self.execute:
                    raise BlockError(
                        f"chunk: {self.input!r} has {len(chunk)} rows; cannot execute "
                        f"{self.execute} from row {self.start}"
                    )
                self._queue.extend(np.asarray(r) for r in rows)
            state[self.output] = self._queue.popleft()
