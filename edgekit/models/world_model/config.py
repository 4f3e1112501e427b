"""``world-model``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorldModelConfig:
    deter: int = 2048
    hidden: int = 256
    stoch: int = 32
    classes: int = 16
    blocks: int = 8
    depth: int = 16  # CNN channels depth * (1, 2, 4, 8)
    units: int = 256  # actor / reward / continue head width
    action_dim: int = 12  # a 12-DoF quadruped's joint targets
    image: int = 64
    hz: float = 50.0
    # planning (rssm-plan)
    plan_hz: float = 10.0
    candidates: int = 512
    horizon: int = 15
    iterations: int = 1
    elites: int = 64
    gamma: float = 0.99
    plan_std: float = 0.5

    @property
    def embed_dim(self) -> int:
        return self.depth * 8 * (self.image // 16) ** 2
