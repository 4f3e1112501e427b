"""DreamerV3 recurrent state-space model (Hafner et al., danijar/dreamerv3), inference path.

* :class:`ConvEncoder`: stride-2 convolutions with channel RMSNorm + SiLU, flattened.
* :class:`RSSM`: the block-diagonal GRU core, the posterior (observe) and prior (imagine) logits
  with 1% unimix, and a categorical sample taken as ``one_hot(argmax(logits + Gumbel(u)))`` where
  ``u`` comes from the host, so the network itself is deterministic.
* :class:`NormMLP` heads: the tanh-mean actor, a symlog two-hot reward head, a continue head.

The block GRU uses a (groups, batch, in) x (groups, in, out) MatMul instead of einsum so the
export is a plain batched MatMul every backend handles.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.models.base import (
    StackModel,
)
from edgekit.models.world_model.config import WorldModelConfig


class RMSNorm(nn.Module):
    """RMS normalisation over ``dim`` (DreamerV3's ``norm: rms``, eps 1e-4) with a scale."""

    def __init__(self, features: int, dim: int = -1, eps: float = 1e-4) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(self.dim, keepdim=True) + self.eps)
        # the scale broadcasts along the normalised axis (channels for NCHW maps)
        shape = [1] * x.dim()
        shape[self.dim] = -1
        return x * self.scale.reshape(shape)


class NormLinear(nn.Sequential):
    """Linear -> RMSNorm -> SiLU: DreamerV3's hidden layer."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__(nn.Linear(d_in, d_out), RMSNorm(d_out), nn.SiLU())


class NormMLP(nn.Sequential):
    """``layers`` NormLinear layers then a plain Linear output."""

    def __init__(self, d_in: int, units: int, layers: int, d_out: int) -> None:
        dims = [d_in] + [units] * layers
        mods: list[nn.Module] = [NormLinear(a, b) for a, b in itertools.pairwise(dims)]
        super().__init__(*mods, nn.Linear(dims[-1], d_out))


class BlockLinear(nn.Module):
    """Block-diagonal linear layer: ``groups`` independent (in/g -> out/g) maps."""

    def __init__(self, d_in: int, d_out: int, groups: int) -> None:
        super().__init__()
        if d_in % groups or d_out % groups:
            raise ValueError(f"{d_in} -> {d_out} is not divisible into {groups} blocks")
        self.groups = groups
        bound = 1.0 / math.sqrt(d_in // groups)
        self.weight = nn.Parameter(
            torch.empty(groups, d_in // groups, d_out // groups).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, g*i) -> (g, B, i) @ (g, i, o) -> (B, g*o): g GEMMs, one MatMul node
        y = torch.matmul(x.unflatten(-1, (self.groups, -1)).transpose(0, 1), self.weight)
        return y.transpose(0, 1).flatten(1) + self.bias


class ConvEncoder(nn.Module):
    """64x64 image -> flat embedding: k4 s2 convs, channels depth * (1, 2, 4, 8), 4x4 out."""

    def __init__(self, depth: int, mults: tuple[int, ...] = (1, 2, 4, 8), image: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for m in mults:
            layers += [nn.Conv2d(c, depth * m, 4, 2, 1), RMSNorm(depth * m, dim=1), nn.SiLU()]
            c = depth * m
        self.net = nn.Sequential(*layers)
        self.out_dim = c * (image // 2 ** len(mults)) ** 2

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).flatten(1)


class RSSM(nn.Module):
    """DreamerV3 RSSM with a categorical latent of ``stoch`` variables x ``classes``."""

    def __init__(
        self,
        deter: int,
        hidden: int,
        stoch: int,
        classes: int,
        action_dim: int,
        embed_dim: int,
        blocks: int = 8,
        unimix: float = 0.01,
    ) -> None:
        super().__init__()
        self.deter, self.stoch, self.classes, self.blocks = deter, stoch, classes, blocks
        self.unimix = unimix
        flat = stoch * classes
        self.dynin0 = NormLinear(deter, hidden)
        self.dynin1 = NormLinear(flat, hidden)
        self.dynin2 = NormLinear(action_dim, hidden)
        # each block sees its slice of deter plus all three input embeddings
        self.dynhid = BlockLinear(deter + blocks * 3 * hidden, deter, blocks)
        self.dynhid_norm = RMSNorm(deter)
        self.dyngru = BlockLinear(deter, 3 * deter, blocks)
        self.prior = NormMLP(deter, hidden, 2, flat)  # imglayers 2
        self.post = NormMLP(deter + embed_dim, hidden, 1, flat)  # obslayers 1

    def core(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One block-GRU step: (deter, stoch, action) -> next deter."""
        g = self.blocks
        action = action / torch.clamp(action.abs(), min=1.0)
        x = torch.cat([self.dynin0(deter), self.dynin1(stoch), self.dynin2(action)], -1)
        x = x.unsqueeze(1).expand(-1, g, -1)
        x = torch.cat([deter.unflatten(-1, (g, -1)), x], -1).flatten(1)
        x = F.silu(self.dynhid_norm(self.dynhid(x)))
        # gates are laid out per block as [reset | cand | update]
        reset, cand, update = self.dyngru(x).unflatten(-1, (g, 3, -1)).unbind(2)
        reset, cand, update = reset.flatten(1), cand.flatten(1), update.flatten(1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * deter

    def sample(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Unimix then a Gumbel-max one-hot sample; ``noise`` (B, S, C) is uniform in (0, 1)."""
        logits = logits.unflatten(-1, (self.stoch, self.classes))
        probs = (1.0 - self.unimix) * logits.softmax(-1) + self.unimix / self.classes
        idx = (probs.log() - torch.log(-torch.log(noise))).argmax(-1, keepdim=True)
        classes = torch.arange(self.classes, device=idx.device)
        return (idx == classes).to(logits.dtype).flatten(1)


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class WorldModel(nn.Module):
    """The shared parts: encoder, RSSM and the actor / reward / continue heads."""

    def __init__(
        self,
        deter: int,
        hidden: int,
        stoch: int,
        classes: int,
        blocks: int,
        depth: int,
        units: int,
        action_dim: int,
        bins: int = 255,
    ) -> None:
        super().__init__()
        self.encoder = ConvEncoder(depth)
        self.rssm = RSSM(deter, hidden, stoch, classes, action_dim, self.encoder.out_dim, blocks)
        feat = deter + stoch * classes
        self.actor = NormMLP(feat, units, 3, action_dim)
        self.reward = NormMLP(feat, units, 1, bins)
        self.cont = NormMLP(feat, units, 1, 1)
        # two-hot bins are evenly spaced in symlog space (DreamerV3 symexp_twohot)
        self.register_buffer("bins", torch.linspace(-20.0, 20.0, bins), persistent=False)

    def heads(self, deter: torch.Tensor, stoch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = torch.cat([deter, stoch], -1)
        reward = symexp(self.reward(feat).softmax(-1) @ self.bins)
        cont = torch.sigmoid(self.cont(feat)).squeeze(-1)
        return reward, cont


class EncoderNet(nn.Module):
    def __init__(self, wm: WorldModel) -> None:
        super().__init__()
        self.wm = wm

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.wm.encoder(image)


class PosteriorNet(nn.Module):
    """Observe step: GRU core, then posterior logits from [deter, embed], then sample."""

    def __init__(self, wm: WorldModel) -> None:
        super().__init__()
        self.wm = wm

    def forward(
        self,
        deter: torch.Tensor,
        stoch: torch.Tensor,
        action: torch.Tensor,
        embed: torch.Tensor,
        noise: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rssm = self.wm.rssm
        deter = rssm.core(deter, stoch, action)
        logits = rssm.post(torch.cat([deter, embed], -1))
        return deter, rssm.sample(logits, noise)


class ImagineNet(nn.Module):
    """Prior step plus reward and continue heads on the new state (planning in imagination)."""

    def __init__(self, wm: WorldModel) -> None:
        super().__init__()
        self.wm = wm

    def forward(
        self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rssm = self.wm.rssm
        deter = rssm.core(deter, stoch, action)
        stoch = rssm.sample(rssm.prior(deter), noise)
        reward, cont = self.wm.heads(deter, stoch)
        return deter, stoch, reward, cont


class ActorNet(nn.Module):
    """Deterministic deployment actor: tanh of the bounded-normal mean."""

    def __init__(self, wm: WorldModel) -> None:
        super().__init__()
        self.wm = wm

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.wm.actor(torch.cat([deter, stoch], -1)))


class DreamerRSSM(StackModel):
    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.wm = WorldModel(
            cfg.deter,
            cfg.hidden,
            cfg.stoch,
            cfg.classes,
            cfg.blocks,
            cfg.depth,
            cfg.units,
            cfg.action_dim,
        )
        self.nets = nn.ModuleDict(
            {
                "encoder": EncoderNet(self.wm),
                "posterior": PosteriorNet(self.wm),
                "imagine": ImagineNet(self.wm),
                "actor": ActorNet(self.wm),
            }
        )

    def networks(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())
