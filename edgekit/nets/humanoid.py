"""Humanoid whole-body controllers.

* :class:`HSTPolicy` follows HumanPlus's Humanoid Shadowing Transformer: a decoder-only
  transformer over a context of past proprioceptive frames that predicts the joint targets of
  the next step from the last token.
* :class:`HoverMLP` follows HOVER / OmniH2O: an MLP [512, 256, 128] on a flattened history.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.nets.common import MLP, Transformer


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
