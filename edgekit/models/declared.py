"""A user's declared tick (``edgekit.loop.blocks``) in closed loop: the documented mapping.

``edgekit eval`` drives a simulated task with a user's policy (kind ``user``: a factory's
``UserModel`` with a tick, a model card, or an artifact made from either) when the tick's
observation and outputs fit the task:

* **observation**: each float tensor of the tick's observation gets the task's observation
  vector (gymnasium's, e.g. Reacher-v5's 10 values: cos and sin of both joints, the target's
  x/y, both joint velocities, fingertip minus target x/y), so it must have that size; a uint8
  tensor of shape (H, W, 3) gets the simulator's rendered camera frame (Reacher renders
  96 x 96). History is the tick's own business (its ``history`` block).
* **action**: the output named ``action`` (or the tick's only output), one command per
  simulator step of the task's action size, clipped to [-1, 1]; an action-chunk queue inside
  the tick plans every N steps by itself.
* **command**: the tick's ``command`` (``torque``, the default, or ``joint_position``) says
  what that action drives; the task applies it (Reacher: joint torques, or joint positions in
  units of pi relative to the joints when the chunk was planned, tracked by a PD law).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import BadInputError
from edgekit.loop import Arrays
from edgekit.models.observe import ClosedLoopBinding, Command, Observer, clipped, register_binding
from edgekit.spec import TensorSpec


@register_binding
class DeclaredTickBinding(ClosedLoopBinding):
    kind = "user"

    def renders(self, params: dict[str, Any]) -> bool:
        return any(_is_frame(t) for t in _observation(params))

    def command_for(self, params: dict[str, Any]) -> Command:
        return "joint_position" if params.get("command") == "joint_position" else "torque"

    def new_observer(self, params: dict[str, Any]) -> Observer:
        specs = _observation(params)

        def observe(env: Any, obs: np.ndarray) -> Arrays:
            state = np.asarray(obs, np.float32)
            out: Arrays = {}
            for t in specs:
                if _is_frame(t):
                    out[t.name] = np.asarray(env.render(), np.uint8)
                    continue
                if tuple(t.shape) != state.shape:
                    raise BadInputError(
                        f"eval: the tick's observation {t.name!r} has shape {list(t.shape)}; "
                        f"the task's observation is {list(state.shape)}"
                    )
                out[t.name] = state.astype(t.dtype)
            return out

        return observe

    def actions(self, out: Arrays) -> list[np.ndarray]:
        if "action" in out:
            return [clipped(out["action"])]
        if len(out) == 1:
            return [clipped(next(iter(out.values())))]
        raise BadInputError(
            f"eval: the tick returns {sorted(out)}; name the command output 'action'"
        )


def _observation(params: dict[str, Any]) -> list[TensorSpec]:
    if "observation" not in params:
        raise BadInputError("eval: this model has no declared tick to drive a task with")
    return [TensorSpec.from_dict(o) for o in params["observation"]]


def _is_frame(t: TensorSpec) -> bool:
    return t.dtype == "uint8" and len(t.shape) == 3 and t.shape[-1] == 3
