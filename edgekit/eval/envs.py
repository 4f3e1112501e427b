"""Simulated tasks for closed-loop evaluation: a registry of small classes, one per task.

A task makes its gymnasium environment, turns a kind's command into the simulator's torque,
scores an episode, and carries the scripted expert its teachers were trained from. What a
kind's loop program observes and what its actions drive on the robot ("torque" or
"joint_position", :data:`~edgekit.models.observe.Command`) is the kind's closed-loop binding,
next to its program (``edgekit/models/<kind>/observe.py``); a task names the kinds it drives.

``reacher``: gymnasium's ``Reacher-v5`` (MuJoCo): a 2-link planar arm, torque control in
[-1, 1] at 50 Hz, 50 steps per episode, a target drawn uniformly in a 0.2 m disc. Success: the
fingertip ends within 2 cm of the target (the fingertip's radius is 1 cm). The expert solves
the arm's inverse kinematics and tracks the solution with a PD law (100% success over 100
seeded episodes). A "torque" command is the joints' torque (clipped to [-1, 1]); a
"joint_position" command is a position relative to the joints at the tick that planned it,
in units of pi, tracked by the arm's PD law at every step (the expert's gains).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgekit.errors import BackendMissingError, BadInputError
from edgekit.models import get_binding
from edgekit.models.observe import Command


class Task:
    """One simulated task; subclasses fill in the environment specifics."""

    name: str = ""
    gym_id: str = ""
    max_steps: int = 0
    kinds: tuple[str, ...] = ()  # zoo kinds whose programs this task can drive
    summary: str = ""

    def make(self, render: bool) -> Any:
        raise NotImplementedError

    def success(self, env: Any, obs: np.ndarray) -> bool:
        raise NotImplementedError

    def expert(self, env: Any) -> np.ndarray:
        """The expert's torque in the current state."""
        raise NotImplementedError

    def anchor(self, env: Any) -> np.ndarray | None:
        """What a relative command refers to, taken at the tick that plans it."""
        return None

    @property
    def commands(self) -> dict[str, Command]:
        """kind -> what its actions drive on the robot (its closed-loop binding's command)."""
        return {kind: get_binding(kind).command for kind in self.kinds}

    def actuate(self, env: Any, action: np.ndarray, command: Command, anchor: Any) -> np.ndarray:
        """The torque the simulator applies this step for an ``action`` of type ``command``."""
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def label(self, env: Any, command: Command, anchor: Any) -> np.ndarray:
        """The expert's action as a ``command`` in the current state (relative to ``anchor``)."""
        return self.expert(env)


class Reacher(Task):
    name = "reacher"
    gym_id = "Reacher-v5"
    max_steps = 50
    kinds = ("diffusion-policy", "humanoid", "vla-flow", "user")  # user: a declared tick that fits
    summary = "gymnasium Reacher-v5 (MuJoCo): 2-link arm to a random target, success < 2 cm"
    links = (0.1, 0.11)  # upper arm, forearm to fingertip (reacher.xml)
    success_m = 0.02
    kp, kd = 2.0, 0.2  # the expert's and the joint controller's PD gains

    def make(self, render: bool) -> Any:
        gym = _gymnasium()
        kwargs: dict[str, Any] = {"max_episode_steps": self.max_steps}
        if render:
            os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering
            kwargs |= {"render_mode": "rgb_array", "width": 96, "height": 96}
        return gym.make(self.gym_id, **kwargs)

    def distance(self, obs: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(obs)[8:10]))  # fingertip - target (x, y)

    def success(self, env: Any, obs: np.ndarray) -> bool:
        return self.distance(obs) < self.success_m

    def target(self, env: Any) -> np.ndarray:
        """The expert's joint target: the arm's inverse kinematics for the target, the
        elbow-up or -down solution nearer the current pose (joint 1 wrapped next to it)."""
        d = env.unwrapped.data
        q = d.qpos[:2]
        tx, ty = float(d.qpos[2]), float(d.qpos[3])
        l1, l2 = self.links
        c2 = np.clip((tx * tx + ty * ty - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
        best = None
        for sign in (1.0, -1.0):
            q2 = sign * np.arccos(c2)
            q1 = np.arctan2(ty, tx) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
            err = np.array([_wrap(q1 - q[0]), q2 - q[1]])
            if best is None or np.abs(err).sum() < np.abs(best).sum():
                best = err
        assert best is not None
        return q + best

    def _track(self, env: Any, target: np.ndarray) -> np.ndarray:
        d = env.unwrapped.data
        err = np.array([_wrap(target[0] - d.qpos[0]), target[1] - d.qpos[1]])
        return np.clip(self.kp * err - self.kd * d.qvel[:2], -1.0, 1.0).astype(np.float32)

    def expert(self, env: Any) -> np.ndarray:
        return self._track(env, self.target(env))

    def anchor(self, env: Any) -> np.ndarray:
        return np.array(env.unwrapped.data.qpos[:2], np.float64)

    def actuate(self, env: Any, action: np.ndarray, command: Command, anchor: Any) -> np.ndarray:
        if command == "torque":
            return super().actuate(env, action, command, anchor)
        return self._track(env, anchor + np.pi * np.clip(action, -1.0, 1.0))

    def label(self, env: Any, command: Command, anchor: Any) -> np.ndarray:
        if command == "torque":
            return self.expert(env)
        return self.position_command(self.target(env), anchor)

    def position_command(self, target: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """A joint-position command: ``target`` relative to ``anchor``, in units of pi."""
        delta = np.asarray(target, np.float64) - anchor
        delta[0] = _wrap(delta[0])
        return np.clip(delta / np.pi, -1.0, 1.0).astype(np.float32)


def _wrap(a: float) -> float:
    return float(np.arctan2(np.sin(a), np.cos(a)))


TASKS: dict[str, Task] = {t.name: t for t in (Reacher(),)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise BadInputError(f"--env {name!r}: unknown task (known: {', '.join(TASKS)})")
    return TASKS[name]


def _gymnasium() -> Any:
    try:
        import gymnasium
        import mujoco  # noqa: F401
    except ImportError:
        raise BackendMissingError(
            "closed-loop evaluation needs gymnasium with MuJoCo: pip install 'edgekit[sim]'"
        ) from None
    return gymnasium
