"""Building blocks shared by the zoo's networks.

Attention is written out (Linear + MatMul + Softmax) instead of ``nn.MultiheadAttention`` so it
exports to plain ONNX ops that every backend and quantizer handles, and so each layer of a stack
gets its own initialisation (``nn.TransformerEncoder`` deep-copies one layer).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Sequential):
    """Linear layers with an activation between them (none after the last)."""

    def __init__(
        self,
        d_in: int,
        hidden: list[int] | tuple[int, ...],
        d_out: int,
        act: type[nn.Module] = nn.ELU,
    ) -> None:
        layers: list[nn.Module] = []
        dims = [d_in, *hidden]
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), act()]
        layers.append(nn.Linear(dims[-1], d_out))
        super().__init__(*layers)


class Attention(nn.Module):
    """Multi-head attention. ``pad_mask`` (B, Lk) bool, True = padding (ignored key)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, ctx: torch.Tensor | None = None, pad_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        ctx = x if ctx is None else ctx
        b, lq, d = x.shape
        lk = ctx.shape[1]
        h = self.heads
        q = self.q(x).reshape(b, lq, h, d // h).transpose(1, 2)
        k = self.k(ctx).reshape(b, lk, h, d // h).transpose(1, 2)
        v = self.v(ctx).reshape(b, lk, h, d // h).transpose(1, 2)
        att = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h))
        if pad_mask is not None:
            att = att.masked_fill(pad_mask[:, None, None, :], -1e9)
        y = torch.matmul(att.softmax(-1), v)
        return self.out(y.transpose(1, 2).reshape(b, lq, d))


class TransformerBlock(nn.Module):
    """Pre-norm transformer layer: self-attention, optional cross-attention, GELU FFN."""

    def __init__(self, dim: int, heads: int, ffn: int, cross: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.cross = Attention(dim, heads) if cross else None
        self.norm_c = nn.LayerNorm(dim) if cross else None
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), pad_mask=pad_mask)
        if self.cross is not None and self.norm_c is not None and memory is not None:
            x = x + self.cross(self.norm_c(x), memory, pad_mask=memory_pad_mask)
        return x + self.ffn(self.norm2(x))


class Transformer(nn.Module):
    """A stack of independently initialised :class:`TransformerBlock` layers + final norm."""

    def __init__(self, dim: int, heads: int, ffn: int, depth: int, cross: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerBlock(dim, heads, ffn, cross=cross) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory, pad_mask, memory_pad_mask)
        return self.norm(x)


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class BasicBlock(nn.Module):
    """ResNet basic block with GroupNorm (batch-1 inference has no batch statistics)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.n1 = group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.n2 = group_norm(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), group_norm(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.n1(self.conv1(x)))
        return F.relu(self.n2(self.conv2(y)) + self.skip(x))


class ResNet(nn.Module):
    """ResNet-18-style image backbone (widths/blocks configurable), GroupNorm, no pooling.

    ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)`` is ResNet-18; the output stride is 32.
    Returns the final feature map (B, widths[-1], H/32, W/32).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        in_ch: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, widths[0], 7, 2, 3, bias=False),
            group_norm(widths[0]),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        stages: list[nn.Module] = []
        c = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                stages.append(BasicBlock(c, w, 2 if (j == 0 and i > 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class SpatialSoftmax(nn.Module):
    """Keypoint pooling (robomimic / Chi et al.): expected (x, y) per channel -> (B, 2C)."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.proj(x)
        b, k, h, w = f.shape
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        att = f.reshape(b, k, h * w).softmax(-1).reshape(b, k, h, w)
        ex = (att.sum(2) * xs).sum(-1)
        ey = (att.sum(3) * ys).sum(-1)
        return torch.cat([ex, ey], dim=-1)


class SinusoidalPosEmb(nn.Module):
    """Sinusoidal embedding of a (B,) float tensor, e.g. the diffusion timestep."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half) * (-math.log(10000.0) / (half - 1)))
        self.freqs: torch.Tensor
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = t[:, None].float() * self.freqs[None, :]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)
