"""``diffusion-policy``: its program in closed loop (``edgekit eval``).

The policy observes the last ``obs_horizon`` camera frames and state vectors (the first
observation of an episode repeated until there are enough), plans a chunk of actions at each
tick and executes ``n_action_steps`` of them open loop before it plans again.

Its actions are joint *positions*, tracked by the robot's joint controller at every step (the
task says relative to what: on ``reacher``, the joints at the tick that planned the chunk, in
units of pi). A chunk run open loop in torque drifts as soon as the arm is a little off the
demonstrated trajectory, while a position chunk is corrected by the joint controller under it:
Chi et al. (Diffusion Policy, RSS 2023) deploy on position control for that reason.

numpy only: an exported artifact is evaluated without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.loop import Arrays
from edgekit.models.observe import ClosedLoopBinding, Observer, clipped, register_binding


class FrameHistory:
    """The last ``horizon`` rendered frames and state vectors, stacked oldest first."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.frames: list[np.ndarray] = []
        self.states: list[np.ndarray] = []

    def __call__(self, env: Any, obs: np.ndarray) -> Arrays:
        state = np.asarray(obs, np.float32)
        frame = env.render()
        self.frames = [*(self.frames or [frame] * self.horizon)[1:], frame]
        self.states = [*(self.states or [state] * self.horizon)[1:], state]
        return {"image": np.stack(self.frames).astype(np.uint8), "proprio": np.stack(self.states)}


@register_binding
class DiffusionPolicyBinding(ClosedLoopBinding):
    kind = "diffusion-policy"
    needs_render = True
    command = "joint_position"

    def new_observer(self, params: dict[str, Any]) -> Observer:
        return FrameHistory(int(params.get("obs_horizon", 1)))

    def actions(self, out: Arrays) -> list[np.ndarray]:
        return [clipped(a) for a in out["actions"]]  # the chunk's n_action_steps

    def plans_every(self, params: dict[str, Any]) -> int:
        return int(params.get("n_action_steps", 1))
