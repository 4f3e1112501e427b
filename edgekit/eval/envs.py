"""Simulated tasks for closed-loop evaluation: a registry of small classes, one per task.

A task makes its gymnasium environment, turns the simulator's state into the observation a zoo
kind's loop program takes (camera frames and proprio history for a diffusion policy, the state
vector for an MLP controller), scores an episode, and carries the scripted expert its teachers
were trained from.

``reacher``: gymnasium's ``Reacher-v5`` (MuJoCo): a 2-link planar arm, torque control in
[-1, 1] at 50 Hz, 50 steps per episode, a target drawn uniformly in a 0.2 m disc. Success: the
fingertip ends within 2 cm of the target (the fingertip's radius is 1 cm). The expert solves
the arm's inverse kinematics and tracks the solution with a PD law (100% success over 100
seeded episodes).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgekit.errors import BackendMissingError, BadInputError

Arrays = dict[str, np.ndarray]


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
        raise NotImplementedError


class Observer:
    """Builds a loop program's observation from the simulator, keeping the history it needs."""

    def __init__(self, params: dict[str, Any], kind: str) -> None:
        self.kind = kind
        self.horizon = int(params.get("obs_horizon", 1))
        self.frames: list[np.ndarray] = []
        self.states: list[np.ndarray] = []

    def __call__(self, env: Any, obs: np.ndarray) -> Arrays:
        state = np.asarray(obs, np.float32)
        if self.kind != "diffusion-policy":
            return {"proprio": state}
        frame = env.render()
        self.frames = [*(self.frames or [frame] * self.horizon)[1:], frame]
        self.states = [*(self.states or [state] * self.horizon)[1:], state]
        return {"image": np.stack(self.frames).astype(np.uint8), "proprio": np.stack(self.states)}


class Reacher(Task):
    name = "reacher"
    gym_id = "Reacher-v5"
    max_steps = 50
    kinds = ("diffusion-policy", "humanoid")
    summary = "gymnasium Reacher-v5 (MuJoCo): 2-link arm to a random target, success < 2 cm"
    links = (0.1, 0.11)  # upper arm, forearm to fingertip (reacher.xml)
    success_m = 0.02
    kp, kd = 2.0, 0.2

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

    def expert(self, env: Any) -> np.ndarray:
        d = env.unwrapped.data
        q, qd = d.qpos[:2], d.qvel[:2]
        tx, ty = float(d.qpos[2]), float(d.qpos[3])
        l1, l2 = self.links
        c2 = np.clip((tx * tx + ty * ty - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
        best = None
        for sign in (1.0, -1.0):  # elbow up / down: the one nearer the current pose
            q2 = sign * np.arccos(c2)
            q1 = np.arctan2(ty, tx) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
            err = np.array([np.arctan2(np.sin(q1 - q[0]), np.cos(q1 - q[0])), q2 - q[1]])
            if best is None or np.abs(err).sum() < np.abs(best).sum():
                best = err
        assert best is not None
        return np.clip(self.kp * best - self.kd * qd, -1.0, 1.0).astype(np.float32)


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
