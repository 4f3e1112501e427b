"""``humanoid``: its control-loop program(s).

numpy only: an exported artifact runs them without torch.
"""

from __future__ import annotations

import numpy as np

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.spec import TensorSpec


@register_program
class HumanoidHistoryProgram(LoopProgram):
    """normalize proprio -> push into the history ring -> policy -> PD joint targets."""

    name = "humanoid-history"
    host_stages = ("normalize", "history", "pd-targets")

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec("proprio", (self.params["obs_dim"],)),)

    def calls_per_tick(self) -> dict[str, int]:
        return {"policy": 1}

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        self.history = np.zeros((1, p["context"], p["obs_dim"]), np.float32)
        self.default_pose = np.zeros(p["act_dim"], np.float32)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        with ctx.host("normalize"):
            x = np.clip(obs["proprio"].astype(np.float32), -5.0, 5.0)
        with ctx.host("history"):
            self.history[0, :-1] = self.history[0, 1:]
            self.history[0, -1] = x
        action = ctx.call("policy", {"obs_history": self.history})["action"][0]
        with ctx.host("pd-targets"):
            targets = self.default_pose + self.params["action_scale"] * np.clip(action, -1, 1)
        return {"action": action, "joint_targets": targets.astype(np.float32)}
