"""Diffusion Policy (Chi et al. 2023, real-stanford/diffusion_policy) networks.

* :class:`DiffusionObsEncoder`: per-frame ResNet (GroupNorm) + SpatialSoftmax keypoints + Linear,
  concatenated with proprio over the observation frames into one global condition vector.
* :class:`ConditionalUnet1D`: Chi's 1D temporal UNet over the action sequence, FiLM-conditioned
  on the diffusion-step embedding and the global condition; predicts the noise (epsilon).
"""

from __future__ import annotations

from itertools import pairwise
from typing import cast

import torch
from torch import nn

from edgekit.models.base import (
    StackModel,
)
from edgekit.models.common import ResNet, SinusoidalPosEmb, SpatialSoftmax, group_norm
from edgekit.models.diffusion_policy.config import DiffusionPolicyConfig


class DiffusionObsEncoder(nn.Module):
    """(B, T, 3, H, W) images in [-1, 1] + (B, T, P) proprio -> (B, T * (feature_dim + P))."""

    def __init__(
        self,
        obs_horizon: int,
        proprio_dim: int,
        widths: tuple[int, ...],
        blocks: tuple[int, ...],
        keypoints: int,
        feature_dim: int,
        image_size: int,
        crop: int,
    ) -> None:
        super().__init__()
        self.obs_horizon = obs_horizon
        # Chi crops randomly in training and centrally at eval; a fixed slice exports as one op.
        self.crop_lo = (image_size - crop) // 2
        self.crop = crop
        self.backbone = ResNet(widths, blocks)
        self.pool = SpatialSoftmax(self.backbone.out_channels, keypoints)
        self.proj = nn.Linear(2 * keypoints, feature_dim)  # robomimic VisualCore: no activation
        self.out_dim = obs_horizon * (feature_dim + proprio_dim)

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        lo, hi = self.crop_lo, self.crop_lo + self.crop
        x = image[:, :, :, lo:hi, lo:hi].flatten(0, 1)  # fold frames into the batch
        feat = self.proj(self.pool(self.backbone(x)))
        feat = feat.unflatten(0, (-1, self.obs_horizon))
        # per frame [image features, proprio], then frames flattened (Chi's global conditioning)
        return torch.cat([feat, proprio], dim=-1).flatten(1)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
            group_norm(c_out, groups),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Resample1d(nn.Module):
    """Chi's Downsample1d (strided Conv1d) or Upsample1d (ConvTranspose1d): time x 1/2 or x 2."""

    def __init__(self, dim: int, up: bool) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose1d(dim, dim, 4, 2, 1) if up else nn.Conv1d(dim, dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1dBlocks with FiLM (per-channel scale and bias from the condition) between."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [Conv1dBlock(c_in, c_out, kernel, groups), Conv1dBlock(c_out, c_out, kernel, groups)]
        )
        self.out_channels = c_out
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual_conv: nn.Module = (
            nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.blocks[0](x)
        film = self.cond_encoder(cond).unflatten(1, (2, self.out_channels))
        out = film[:, 0, :, None] * out + film[:, 1, :, None]
        out = self.blocks[1](out)
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """Chi's ConditionalUnet1D with global conditioning and ``cond_predict_scale=True``.

    forward(sample (B, horizon, action_dim), timestep (B,) float, cond (B, cond_dim))
    -> noise prediction (B, horizon, action_dim). The horizon must be divisible by
    ``2 ** (len(down_dims) - 1)``.
    """

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        down_dims: tuple[int, ...] = (256, 512, 1024),
        step_embed_dim: int = 128,
        kernel: int = 5,
        groups: int = 8,
    ) -> None:
        super().__init__()
        all_dims = [action_dim, *down_dims]
        in_out = list(pairwise(all_dims))
        d = step_embed_dim
        self.diffusion_step_encoder = nn.Sequential(
            SinusoidalPosEmb(d), nn.Linear(d, 4 * d), nn.Mish(), nn.Linear(4 * d, d)
        )
        c = d + cond_dim

        def block(a: int, b: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(a, b, c, kernel, groups)

        self.down_modules = nn.ModuleList()
        for i, (a, b) in enumerate(in_out):
            last = i == len(in_out) - 1
            down: nn.Module = nn.Identity() if last else Resample1d(b, up=False)
            self.down_modules.append(nn.ModuleList([block(a, b), block(b, b), down]))
        mid = all_dims[-1]
        self.mid_modules = nn.ModuleList([block(mid, mid), block(mid, mid)])
        # As in Chi's code every up stage upsamples (its is_last test never fires), which
        # undoes exactly the len(down_dims) - 1 downsamplings.
        self.up_modules = nn.ModuleList()
        for a, b in reversed(in_out[1:]):
            up = Resample1d(a, up=True)
            self.up_modules.append(nn.ModuleList([block(2 * b, a), block(a, a), up]))
        self.final_conv = nn.Sequential(
            Conv1dBlock(down_dims[0], down_dims[0], kernel, groups),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        g = torch.cat([self.diffusion_step_encoder(timestep), cond], dim=-1)
        x = sample.transpose(1, 2)  # (B, action_dim, horizon): convolve over time
        skips = []
        for stage in self.down_modules:
            res1, res2, down = cast(nn.ModuleList, stage)
            x = res2(res1(x, g), g)
            skips.append(x)
            x = down(x)
        for m in self.mid_modules:
            x = m(x, g)
        for stage in self.up_modules:
            res1, res2, up = cast(nn.ModuleList, stage)
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, g), g))
        return self.final_conv(x).transpose(1, 2)


class DiffusionPolicy(StackModel):
    def __init__(self, cfg: DiffusionPolicyConfig) -> None:
        super().__init__()
        self.encoder = DiffusionObsEncoder(
            cfg.obs_horizon,
            cfg.proprio_dim,
            cfg.widths,
            cfg.blocks,
            cfg.keypoints,
            cfg.feature_dim,
            cfg.image_size,
            cfg.crop,
        )
        self.denoiser = ConditionalUnet1D(
            cfg.action_dim, cfg.cond_dim, cfg.down_dims, cfg.step_embed_dim, cfg.kernel, cfg.groups
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "denoiser": self.denoiser}
