"""``humanoid``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HumanoidConfig:
    arch: str = "hst"  # "hst" (HumanPlus transformer) or "mlp" (HOVER)
    obs_dim: int = 84
    act_dim: int = 19
    context: int = 8
    width: int = 128
    depth: int = 4
    heads: int = 4
    ffn: int = 512
    hidden: tuple[int, ...] = (512, 256, 128)
    action_scale: float = 0.25
    hz: float = 50.0
