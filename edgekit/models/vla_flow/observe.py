"""``vla-flow``: its program in closed loop (``edgekit eval``).

Each step the policy observes one MuJoCo camera frame (the task's 96 x 96 render, averaged
down to the preset's ``image_size``), a fixed instruction (Reacher has one task: the token ids
``1..instr_len``, "reach the target") and the simulator's state vector as ``proprio``. The
program runs the prefix once per plan (its KV cache), then K Euler steps of the action expert,
and hands the robot a chunk's first ``n_action_steps`` actions, executed open loop.

Its actions are joint *positions* relative to the joints at the tick that planned the chunk,
in units of pi, tracked by the robot's joint controller (``Reacher.actuate``), as the
diffusion policy's teacher. A program that keeps its own chunk queue (``host_queue``, the
default presets) is driven one action per tick; its commands are then relative to the joints
at every tick, which only the ``reacher`` preset (``host_queue`` false) was trained for.

numpy only: an exported artifact is evaluated without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import BadInputError
from edgekit.loop import Arrays
from edgekit.models.observe import ClosedLoopBinding, Observer, clipped, register_binding


def downsample(frame: np.ndarray, size: int) -> np.ndarray:
    """An (H, W, 3) uint8 frame as (size, size, 3): mean over blocks when H divides by size,
    nearest pixels otherwise."""
    h, w = frame.shape[:2]
    if h == w and h % size == 0:
        r = h // size
        blocks = frame.reshape(size, r, size, r, 3).astype(np.float32).mean(axis=(1, 3))
        return np.round(blocks).astype(np.uint8)
    rows = np.arange(size) * h // size
    cols = np.arange(size) * w // size
    return frame[rows][:, cols].astype(np.uint8)


class CameraState:
    """The program's observation at one step: camera frame, instruction, state vector."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.cameras = int(params["cameras"])
        self.size = int(params["image_size"])
        self.proprio_dim = int(params["proprio_dim"])
        if self.cameras != 1:
            raise BadInputError(
                f"vla-flow in closed loop renders one camera; this program takes {self.cameras} "
                "(use the reacher preset)"
            )
        self.instruction = (np.arange(int(params["instr_len"])) + 1) % int(params["vocab"])

    def __call__(self, env: Any, obs: np.ndarray) -> Arrays:
        state = np.asarray(obs, np.float32)
        if state.shape != (self.proprio_dim,):
            raise BadInputError(
                f"vla-flow: the task's state has shape {list(state.shape)} but the program "
                f"takes proprio of {self.proprio_dim} (use the reacher preset)"
            )
        frame = downsample(np.asarray(env.render()), self.size)
        return {
            "images": frame[None],
            "instruction": self.instruction.astype(np.int64),
            "proprio": state,
        }


@register_binding
class VLAFlowBinding(ClosedLoopBinding):
    kind = "vla-flow"
    needs_render = True
    command = "joint_position"

    def new_observer(self, params: dict[str, Any]) -> Observer:
        return CameraState(params)

    def actions(self, out: Arrays) -> list[np.ndarray]:
        if "actions" in out:  # a plan every tick: its n_action_steps
            return [clipped(a) for a in out["actions"]]
        return [clipped(out["action"])]  # the program's own queue: one per tick

    def plans_every(self, params: dict[str, Any]) -> int:
        if params.get("host_queue", True):
            return 1
        return int(params["n_action_steps"])
