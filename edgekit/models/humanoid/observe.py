"""``humanoid``: its program in closed loop (``edgekit eval``).

The controller observes the simulator's state vector each step (its program carries the
history ring itself) and commands joint torques at every step: one tick, one command, its
``joint_targets`` output (the policy's action scaled about the default pose; the ``reacher``
preset's scale is 1 about a zero pose, so the command is the action in [-1, 1]).

numpy only: an exported artifact is evaluated without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.loop import Arrays
from edgekit.models.observe import ClosedLoopBinding, Observer, clipped, register_binding


def state(env: Any, obs: np.ndarray) -> Arrays:
    """The program's observation: the simulator's state vector as ``proprio``."""
    return {"proprio": np.asarray(obs, np.float32)}


@register_binding
class HumanoidBinding(ClosedLoopBinding):
    kind = "humanoid"
    needs_render = False
    command = "torque"

    def new_observer(self, params: dict[str, Any]) -> Observer:
        return state

    def actions(self, out: Arrays) -> list[np.ndarray]:
        return [clipped(out["joint_targets"])]
