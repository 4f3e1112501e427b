"""What every declared block shares: its declaration (a strict pydantic model, so a bad key
reads ``tick.blocks[2].mean: ...``), the tick's named arrays, and the block registry.

A block reads named arrays from the tick's state and writes named arrays back. The state
starts each tick with the observation (batch-free arrays, as the robot hands them over); a
network call adds the batch axis of 1 on the way in and removes it on the way out.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from edgekit.loop.program import Arrays, TickContext
from edgekit.spec import NetworkSpec


class BlockError(ValueError):
    """A declared block that cannot run: raised while checking a declaration."""


class Block(BaseModel):
    """One step of a declared tick. Subclasses add their fields and implement ``run``."""

    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)
    calls_network: ClassVar[bool] = False  # skipped on ticks that execute from a chunk queue
    host_stage: ClassVar[str] = ""  # the stage name its host time is booked under

    def reads(self) -> list[str]:
        return []

    def writes(self) -> list[str]:
        return []

    def calls(self) -> dict[str, int]:
        """Network name -> calls per tick (on a tick that runs it)."""
        return {}

    def check(self, networks: dict[str, NetworkSpec], where: str) -> None:
        """Refuse a block whose tensors do not match the networks' io specs."""

    def reset(self) -> None:
        """Start of an episode: drop history, queues and recurrent state."""

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def end_tick(self, state: Arrays) -> None:
        """After every block ran (recurrent state keeps this tick's outputs)."""


def need(state: Arrays, name: str, block: str) -> np.ndarray:
    if name not in state:
        raise BlockError(f"{block}: reads {name!r}, which no observation or earlier block made")
    return state[name]


def network(networks: dict[str, NetworkSpec], name: str, where: str) -> NetworkSpec:
    if name not in networks:
        raise BlockError(
            f"{where}.network: {name!r} is not a network of the model "
            f"(networks: {', '.join(networks) or 'none'})"
        )
    return networks[name]


def check_io(net: NetworkSpec, inputs: list[str], outputs: list[str], where: str) -> None:
    """Every input the block feeds and output it reads must be the network's."""
    for n in inputs:
        if n not in net.input_names:
            raise BlockError(
                f"{where}: {n!r} is not an input of network {net.name!r} "
                f"(inputs: {', '.join(net.input_names)})"
            )
    missing = [n for n in net.input_names if n not in inputs]
    if missing:
        raise BlockError(f"{where}: network {net.name!r} input(s) {missing} are not fed")
    for n in outputs:
        if n not in net.output_names:
            raise BlockError(
                f"{where}: {n!r} is not an output of network {net.name!r} "
                f"(outputs: {', '.join(net.output_names)})"
            )


def stats(values: Any, dtype: Any = np.float32) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype)
