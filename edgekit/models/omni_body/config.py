"""``omni-body``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

ROLES = ("arm", "leg", "torso")


class Joint(NamedTuple):
    """One actuated joint and the link it moves (SI units, radians)."""

    axis: tuple[float, float, float]
    lo: float
    hi: float
    depth: int  # joints between it and the base, itself included
    length: float  # m
    mass: float  # kg
    torque: float  # N m
    offset: tuple[float, float, float]  # joint origin in the parent link frame, m
    side: float  # +1 left, -1 right, 0 centre
    role: str
    default: float  # nominal pose, rad

    def descriptor(self) -> list[float]:
        """16 numbers: axis 3, range 2, depth, length, mass, torque, offset 3, side, role 3."""
        role = [float(self.role == r) for r in ROLES]
        return [
            *self.axis, self.lo, self.hi, self.depth / 10.0, self.length, self.mass / 10.0,
            self.torque / 100.0, *self.offset, self.side, *role,
        ]  # fmt: skip


@dataclass(frozen=True)
class OmniBodyConfig:
    width: int = 128
    depth: int = 5
    heads: int = 2
    ffn: int = 1024
    max_limbs: int = 24
    decoder_hidden: tuple[int, ...] = (128,)
    act_per_limb: int = 1  # one token per actuated joint, one position target each
    action_scale: float = 0.25
    hz: float = 50.0
