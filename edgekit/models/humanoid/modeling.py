"""Humanoid whole-body controllers.

* :class:`HSTPolicy` follows HumanPlus's Humanoid Shadowing Transformer: a decoder-only
  transformer over a context of past proprioceptive frames that predicts the joint targets of
  the next step from the last token.
* :class:`HoverMLP` follows HOVER / OmniH2O: an MLP [512, 256, 128] on a flattened history.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.models.base import (
    StackModel,
)
from edgekit.models.common import MLP, Transformer
from edgekit.models.humanoid.config import HumanoidConfig


class HSTPolicy(nn.Module):
    def __init__(
        self, obs_dim: int, act_dim: int, context: int, width: int, depth: int, heads: int, ffn: int
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(obs_dim, width)
        self.pos = nn.Parameter(torch.randn(1, context, width) * 0.02)
        self.body = Transformer(width, heads, ffn, depth)
        self.head = nn.Linear(width, act_dim)

    def forward(self, obs_history: torch.Tensor) -> torch.Tensor:
        x = self.embed(obs_history) + self.pos
        return self.head(self.body(x)[:, -1])


class HoverMLP(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, context: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp = MLP(obs_dim * context, list(hidden), act_dim)

    def forward(self, obs_history: torch.Tensor) -> torch.Tensor:
        return self.mlp(obs_history.flatten(1))


class Humanoid(StackModel):
    def __init__(self, cfg: HumanoidConfig) -> None:
        super().__init__()
        if cfg.arch == "hst":
            self.policy: nn.Module = HSTPolicy(
                cfg.obs_dim, cfg.act_dim, cfg.context, cfg.width, cfg.depth, cfg.heads, cfg.ffn
            )
        else:
            self.policy = HoverMLP(cfg.obs_dim, cfg.act_dim, cfg.context, cfg.hidden)

    def networks(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}
