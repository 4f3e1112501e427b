"""Morphology-conditioned policy shared by many bodies (MetaMorph, Gupta et al. 2022).

One token per actuated joint: ``Linear(limb_obs) + Linear(morphology)`` plus a learned
limb-index embedding, a transformer whose attention ignores padded limbs, and a per-limb MLP
decoder. Padded limbs' outputs are zeroed, so the same weights drive a 7-DoF arm, a 12-DoF
quadruped and a 19-DoF humanoid, the body selected only by the inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.models.base import (
    StackModel,
)
from edgekit.models.common import MLP, Transformer
from edgekit.models.omni_body.config import OmniBodyConfig
from edgekit.models.omni_body.program import MORPH_DIM, OBS_PER_LIMB


class MorphologyPolicy(nn.Module):
    def __init__(
        self,
        obs_per_limb: int,
        morph_dim: int,
        act_per_limb: int,
        max_limbs: int,
        width: int,
        depth: int,
        heads: int,
        ffn: int,
        decoder_hidden: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.obs_embed = nn.Linear(obs_per_limb, width)
        self.morph_embed = nn.Linear(morph_dim, width)
        self.pos = nn.Parameter(torch.randn(1, max_limbs, width) * 0.02)
        self.scale = math.sqrt(width)  # MetaMorph scales the limb embedding by sqrt(d_model)
        self.body = Transformer(width, heads, ffn, depth)
        self.decoder = MLP(width, list(decoder_hidden), act_per_limb)

    def forward(
        self, limb_obs: torch.Tensor, morphology: torch.Tensor, pad_mask: torch.Tensor
    ) -> torch.Tensor:
        x = (self.obs_embed(limb_obs) + self.morph_embed(morphology)) * self.scale + self.pos
        x = self.body(x, pad_mask=pad_mask)
        # padded limbs still get (meaningless) outputs from attending to real ones: zero them
        return self.decoder(x) * (~pad_mask).unsqueeze(-1).to(x.dtype)


class OmniBody(StackModel):
    def __init__(self, cfg: OmniBodyConfig) -> None:
        super().__init__()
        self.policy = MorphologyPolicy(
            OBS_PER_LIMB, MORPH_DIM, cfg.act_per_limb, cfg.max_limbs, cfg.width, cfg.depth,
            cfg.heads, cfg.ffn, cfg.decoder_hidden,
        )  # fmt: skip

    def networks(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}
