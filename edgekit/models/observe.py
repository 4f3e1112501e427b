"""How a kind's loop program is driven in closed loop: what it observes, what it commands.

A closed-loop evaluation (``edgekit eval``) steps a simulated robot with a model's own loop
program. What the program takes each tick and what its outputs mean on the robot belong to
the kind, not to the task, so each kind that can drive a robot has a :class:`ClosedLoopBinding`
next to its program (``edgekit/models/<kind>/observe.py``): it builds the program's
observation from the simulator (keeping the history the program expects), picks the commands
one tick hands the robot out of the program's outputs, and names what they drive
(:data:`Command`). The task turns a command into the simulator's torque.

numpy only (no torch, no gymnasium): an exported artifact is evaluated without torch.
``edgekit.models.get_binding(kind)`` looks a kind's binding up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np

from edgekit.loop import Arrays
from edgekit.registry import Registry

# What a kind's actions drive on the robot: joint torques, or joint positions that the robot's
# joint controller tracks (the task says relative to what, and with which gains)
Command = Literal["torque", "joint_position"]

# (simulator env, its latest observation) -> the loop program's observation for this step
Observer = Callable[[Any, np.ndarray], Arrays]


class ClosedLoopBinding:
    """One kind's loop program in closed loop; subclasses fill in the kind's specifics."""

    kind: ClassVar[str]
    needs_render: ClassVar[bool] = False  # the observation holds camera frames
    command: ClassVar[Command] = "torque"

    def new_observer(self, params: dict[str, Any]) -> Observer:
        """A fresh observer for one episode of a program with ``params``: called once per
        simulator step, it returns the program's observation and keeps the history it needs."""
        raise NotImplementedError

    def actions(self, out: Arrays) -> list[np.ndarray]:
        """The commands one tick hands the robot, in execution order, clipped to [-1, 1]."""
        raise NotImplementedError

    def plans_every(self, params: dict[str, Any]) -> int:
        """Simulator steps between two ticks (plans) of a program with ``params``."""
        return 1

    def renders(self, params: dict[str, Any]) -> bool:
        """Whether a program with ``params`` observes camera frames."""
        return self.needs_render

    def command_for(self, params: dict[str, Any]) -> Command:
        """What a program with ``params`` commands."""
        return self.command


BINDINGS: Registry[ClosedLoopBinding] = Registry("closed-loop kind")


def register_binding(cls: type[ClosedLoopBinding]) -> type[ClosedLoopBinding]:
    BINDINGS.add(cls.kind, cls())
    return cls


def clipped(action: np.ndarray) -> np.ndarray:
    """One command as the robot takes it: float32 in [-1, 1]."""
    return np.clip(action, -1.0, 1.0).astype(np.float32)
