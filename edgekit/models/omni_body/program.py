"""``omni-body``: its control-loop program(s).

numpy only: an exported artifact runs them without torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.models.omni_body.config import Joint
from edgekit.spec import TensorSpec

BASE_DIM = (
    13  # base orientation quaternion (4), angular velocity (3), linear velocity (3), gravity (3)
)


MORPH_DIM = 16  # see Joint.descriptor


OBS_PER_LIMB = 3 + BASE_DIM  # joint position, velocity, previous action, base features


X, Y, Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
NEG_Y, NEG_Z = (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)


def _arm7() -> list[Joint]:
    # Franka Panda: joint ranges, link masses and torque limits from its public data sheet
    lo = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
    hi = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
    axes = (Z, Y, Z, NEG_Y, Z, NEG_Y, NEG_Z)
    length = (0.333, 0.0, 0.316, 0.0825, 0.384, 0.0, 0.088)
    mass = (4.97, 0.65, 3.23, 3.59, 1.23, 1.67, 0.74)
    torque = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
    offset = ((0.0, 0.0, 0.333), (0.0, 0.0, 0.0), (0.0, -0.316, 0.0), (0.0825, 0.0, 0.0),
              (-0.0825, 0.384, 0.0), (0.0, 0.0, 0.0), (0.088, 0.0, 0.0))  # fmt: skip
    ready = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
    return [
        Joint(axes[i], lo[i], hi[i], i + 1, length[i], mass[i], torque[i], offset[i], 0.0, "arm",
              ready[i])
        for i in range(7)
    ]  # fmt: skip


def _quadruped12() -> list[Joint]:
    # Unitree Go1-like: per leg hip abduction (x), thigh (y), calf (y); legs FR, FL, RR, RL
    joints = []
    for fore, side in ((1.0, -1.0), (1.0, 1.0), (-1.0, -1.0), (-1.0, 1.0)):
        hip, thigh_at = (0.1881 * fore, 0.04675 * side, 0.0), (0.0, 0.08 * side, 0.0)
        thigh = 0.8 if fore > 0 else 1.0
        joints += [
            Joint(X, -0.863, 0.863, 1, 0.08, 0.696, 23.7, hip, side, "leg", 0.0),
            Joint(Y, -0.686, 4.501, 2, 0.213, 1.013, 23.7, thigh_at, side, "leg", thigh),
            Joint(Y, -2.818, -0.888, 3, 0.213, 0.166, 35.55, (0.0, 0.0, -0.213), side, "leg", -1.5),
        ]  # fmt: skip
    return joints


def _humanoid19() -> list[Joint]:
    # Unitree H1 order: left leg 5, right leg 5, torso, left arm 4, right arm 4
    def leg(s: float) -> list[Joint]:
        return [
            Joint(Z, -0.43, 0.43, 1, 0.05, 2.24, 200.0, (0.0, 0.0875 * s, -0.1742), s, "leg", 0.0),
            Joint(X, -0.43, 0.43, 2, 0.05, 2.23, 200.0, (0.0395, 0.0, 0.0), s, "leg", 0.0),
            Joint(Y, -3.14, 2.53, 3, 0.4, 4.15, 200.0, (0.0, 0.1154 * s, 0.0), s, "leg", -0.4),
            Joint(Y, -0.26, 2.05, 4, 0.4, 1.72, 300.0, (0.0, 0.0, -0.4), s, "leg", 0.8),
            Joint(Y, -0.87, 0.52, 5, 0.2, 0.47, 40.0, (0.0, 0.0, -0.4), s, "leg", -0.4),
        ]

    def arm(s: float) -> list[Joint]:
        roll = (-0.34, 3.11) if s > 0 else (-3.11, 0.34)
        yaw = (-1.3, 4.45) if s > 0 else (-4.45, 1.3)
        return [
            Joint(Y, -2.87, 2.87, 2, 0.05, 1.03, 40.0, (0.0055, 0.1554 * s, 0.43), s, "arm", 0.0),
            Joint(X, *roll, 3, 0.05, 0.79, 40.0, (-0.0055, 0.0565 * s, -0.0165), s, "arm", 0.0),
            Joint(Z, *yaw, 4, 0.28, 0.84, 18.0, (0.0, 0.0, -0.1343), s, "arm", 0.0),
            Joint(Y, -1.25, 2.61, 5, 0.3, 0.67, 18.0, (0.0185, 0.0, -0.198), s, "arm", 0.0),
        ]

    torso = Joint(Z, -2.35, 2.35, 1, 0.5, 17.8, 200.0, (0.0, 0.0, 0.0), 0.0, "torso", 0.0)
    return [*leg(1.0), *leg(-1.0), torso, *arm(1.0), *arm(-1.0)]


EMBODIMENTS = {"arm7": _arm7, "quadruped12": _quadruped12, "humanoid19": _humanoid19}


@register_program
class OmniBodyProgram(LoopProgram):
    """tokenize joints + base into padded limb tokens -> policy -> unpad, scale, clip."""

    name = "omni-body"
    host_stages = ("tokenize", "unpad")

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        name = str(self.params["embodiment"])
        if name not in EMBODIMENTS:
            raise ValueError(f"omni-body: unknown embodiment {name!r}; known: {list(EMBODIMENTS)}")
        self.joints = EMBODIMENTS[name]()
        self.dof = len(self.joints)
        if self.dof > int(self.params["max_limbs"]):
            raise ValueError(
                f"omni-body: {name} has {self.dof} joints > {self.params['max_limbs']}"
            )
        self.lo = np.array([j.lo for j in self.joints], np.float32)
        self.hi = np.array([j.hi for j in self.joints], np.float32)
        self.default = np.array([j.default for j in self.joints], np.float32)

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        return (
            TensorSpec("joint_pos", (self.dof,)),
            TensorSpec("joint_vel", (self.dof,)),
            TensorSpec("base", (BASE_DIM,)),
        )

    def calls_per_tick(self) -> dict[str, int]:
        return {"policy": 1}

    def sample_observation(self, rng: np.random.Generator) -> Arrays:
        """A plausible state: joints near the nominal pose, a unit quaternion, gravity ~ -z."""
        pos = np.clip(self.default + 0.2 * rng.standard_normal(self.dof), self.lo, self.hi)
        quat = np.array([1.0, 0.0, 0.0, 0.0]) + 0.05 * rng.standard_normal(4)
        quat /= np.linalg.norm(quat)
        vel = 0.3 * rng.standard_normal(6)
        gravity = np.array([0.0, 0.0, -1.0]) + 0.05 * rng.standard_normal(3)
        return {
            "joint_pos": pos.astype(np.float32),
            "joint_vel": rng.standard_normal(self.dof).astype(np.float32),
            "base": np.concatenate([quat, vel, gravity]).astype(np.float32),
        }

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        n, d = int(p["max_limbs"]), self.dof
        self.prev_action = np.zeros((d, int(p["act_per_limb"])), np.float32)
        # the body never changes within an episode: morphology and mask are built once
        self.morphology = np.zeros((1, n, MORPH_DIM), np.float32)
        self.morphology[0, :d] = np.array([j.descriptor() for j in self.joints], np.float32)
        self.pad_mask = np.arange(n)[None] >= d
        self.limb_obs = np.zeros((1, n, OBS_PER_LIMB), np.float32)
        self.mid = (self.lo + self.hi) / 2
        self.half = (self.hi - self.lo) / 2

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        d = self.dof
        with ctx.host("tokenize"):
            # joint position normalised to its range, so arm, leg and torso joints share units
            self.limb_obs[0, :d, 0] = (obs["joint_pos"] - self.mid) / self.half
            self.limb_obs[0, :d, 1] = 0.05 * obs["joint_vel"]
            self.limb_obs[0, :d, 2] = self.prev_action[:, 0]
            self.limb_obs[0, :d, 3:] = obs["base"]  # every limb token sees the base state
            np.clip(self.limb_obs, -5.0, 5.0, out=self.limb_obs)
        feeds = {
            "limb_obs": self.limb_obs,
            "morphology": self.morphology,
            "pad_mask": self.pad_mask,
        }
        out = ctx.call("policy", feeds)["limb_action"]
        with ctx.host("unpad"):
            raw = np.clip(out[0, :d], -1.0, 1.0)
            self.prev_action = raw
            scale = float(self.params["action_scale"])
            targets = np.clip(self.default + scale * raw[:, 0], self.lo, self.hi)
        return {"action": targets.astype(np.float32)}
