"""Flow-matching VLA networks after pi0 (Black et al. 2024) and SmolVLA (Shukor et al. 2025).

Two networks, exported separately, with the KV cache between them as explicit tensors:

* :class:`Prefix` (the "VLM"): every camera through a patch embedding and a SigLIP-style ViT,
  pixel-shuffled and projected to the backbone width (SmolVLM's connector); the instruction's
  token embeddings; the proprio state as one token (SmolVLA puts the state in the prefix);
  then a Llama-style backbone (RMSNorm, grouped-query attention, gated SiLU MLP) with full
  attention over the prefix. It returns each layer's keys and values, stacked:
  ``prefix_keys`` / ``prefix_values`` of shape ``[batch, layers, kv_heads, prefix_len,
  head_dim]``. Nothing reads the backbone's last hidden state, so its last layer computes
  only its K/V (pi0 runs that layer's attention output and MLP and throws them away).
* :class:`ActionExpert`: the noisy chunk ``x_t`` and the flow time ``t`` (pi0's sinusoidal
  embedding, mixed with the action tokens by an MLP), through one layer per backbone layer.
  In layer ``l`` the action tokens attend to the prefix's cached K/V of layer ``l``
  concatenated with their own (pi0's joint attention; the prefix never attends to the
  actions, which is what makes its cache valid for every step). Output: the velocity
  ``v = noise - actions`` that pi0's flow matching regresses.

Positions are learned absolute embeddings added to the inputs (pi0 and SmolVLA use RoPE in
the backbone; with absolute positions the cache needs no rotation and the export no RoPE op).
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.models.base import StackModel
from edgekit.models.common import Transformer
from edgekit.models.vla_flow.config import VLAFlowConfig


class RMSNorm(nn.Module):
    """Llama's RMSNorm, written out (opset 20 has no RMSNormalization op)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class GatedMLP(nn.Module):
    """down(silu(gate(x)) * up(x)): the Llama / SmolLM2 MLP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention without a mask: q (B, H, Lq, D), k/v (B, Hkv, Lk, D).

    Query head ``h`` reads kv head ``h // (H / Hkv)``, as Hugging Face's ``repeat_kv``; the
    groups broadcast in the MatMul instead of copying the cache ``H / Hkv`` times.
    """
    b, h, lq, d = q.shape
    g = h // k.shape[1]
    q = q.reshape(b, k.shape[1], g, lq, d)
    att = torch.matmul(q, k[:, :, None].transpose(-1, -2)) * (1.0 / math.sqrt(d))
    y = torch.matmul(att.softmax(-1), v[:, :, None])
    return y.reshape(b, h, lq, d)


class KVLayer(nn.Module):
    """A decoder layer's K/V projections (and, unless ``kv_only``, the rest of the layer)."""

    def __init__(
        self, width: int, heads: int, kv_heads: int, head_dim: int, ffn: int, kv_only: bool
    ) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.norm1 = RMSNorm(width)
        self.k = nn.Linear(width, kv_heads * head_dim, bias=False)
        self.v = nn.Linear(width, kv_heads * head_dim, bias=False)
        self.kv_only = kv_only
        if not kv_only:
            self.q = nn.Linear(width, heads * head_dim, bias=False)
            self.o = nn.Linear(heads * head_dim, width, bias=False)
            self.norm2 = RMSNorm(width)
            self.mlp = GatedMLP(width, ffn)

    def split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, heads, self.head_dim).transpose(1, 2)

    def kv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.k(h), self.kv_heads), self.split(self.v(h), self.kv_heads)

    def mix(
        self, x: torch.Tensor, h: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """Residual attention of ``h``'s queries over ``keys``/``values``, then the MLP."""
        q = self.split(self.q(h), self.heads)
        y = attend(q, keys, values).transpose(1, 2)
        x = x + self.o(y.reshape(x.shape[0], x.shape[1], -1))
        return x + self.mlp(self.norm2(x))


class Prefix(nn.Module):
    """images (B, cams, 3, S, S) in [-1, 1], instruction (B, L) int64, proprio (B, P) ->
    prefix_keys, prefix_values (B, layers, kv_heads, prefix_len, head_dim)."""

    def __init__(self, cfg: VLAFlowConfig) -> None:
        super().__init__()
        vw, r = cfg.vision_width, cfg.shuffle
        self.grid, self.shuffle = cfg.grid, r
        self.patch = nn.Conv2d(3, vw, cfg.patch, cfg.patch)
        self.vision_pos = nn.Parameter(torch.randn(1, cfg.grid**2, vw) * 0.02)
        self.vision = Transformer(vw, cfg.vision_heads, cfg.vision_ffn, cfg.vision_layers)
        self.connector = nn.Linear(vw * r * r, cfg.width, bias=False)
        self.tok_emb = nn.Embedding(cfg.vocab, cfg.width)
        self.state_proj = nn.Linear(cfg.proprio_dim, cfg.width)
        self.pos = nn.Parameter(torch.randn(1, cfg.prefix_len, cfg.width) * 0.02)
        self.layers = nn.ModuleList(
            KVLayer(cfg.width, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.ffn, i == cfg.layers - 1)
            for i in range(cfg.layers)
        )

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        b, cams, c, s, _ = images.shape
        x = self.patch(images.reshape(b * cams, c, s, s))  # (B*cams, vw, g, g)
        x = self.vision(x.flatten(2).transpose(1, 2) + self.vision_pos)
        g, r, d = self.grid, self.shuffle, x.shape[-1]
        # pixel shuffle: each r x r block of patches becomes one token of r*r*vw features
        x = x.reshape(b * cams, g // r, r, g // r, r, d).permute(0, 1, 3, 2, 4, 5)
        x = self.connector(x.reshape(b * cams, (g // r) ** 2, r * r * d))
        return x.reshape(b, -1, x.shape[-1])

    def forward(
        self, images: torch.Tensor, instruction: torch.Tensor, proprio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.image_tokens(images)
        txt = self.tok_emb(instruction)
        state = self.state_proj(proprio)[:, None]
        x = torch.cat([img, txt, state], dim=1) + self.pos
        keys, values = [], []
        for layer in cast(list[KVLayer], self.layers):
            h = layer.norm1(x)
            k, v = layer.kv(h)
            keys.append(k)
            values.append(v)
            if not layer.kv_only:
                x = layer.mix(x, h, k, v)
        return torch.stack(keys, dim=1), torch.stack(values, dim=1)


class FlowTime(nn.Module):
    """pi0's sinusoidal embedding of the flow time t in [0, 1] (periods 4e-3 to 4)."""

    def __init__(self, dim: int, min_period: float = 4e-3, max_period: float = 4.0) -> None:
        super().__init__()
        fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64)
        period = min_period * (max_period / min_period) ** fraction
        self.scale: torch.Tensor
        self.register_buffer("scale", (2 * math.pi / period).float(), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = t[:, None].float() * self.scale[None, :]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class ActionExpert(nn.Module):
    """x_t (B, chunk, A), t (B,), prefix_keys, prefix_values -> velocity (B, chunk, A)."""

    def __init__(self, cfg: VLAFlowConfig) -> None:
        super().__init__()
        ew = cfg.expert_width
        self.action_in = nn.Linear(cfg.action_dim, ew)
        self.time = FlowTime(ew)
        self.time_mlp_in = nn.Linear(2 * ew, ew)  # pi0's action_time_mlp_in / _out
        self.time_mlp_out = nn.Linear(ew, ew)
        self.pos = nn.Parameter(torch.randn(1, cfg.chunk, ew) * 0.02)
        self.layers = nn.ModuleList(
            KVLayer(ew, cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.expert_ffn, kv_only=False)
            for _ in range(cfg.layers)
        )
        self.norm = RMSNorm(ew)
        self.action_out = nn.Linear(ew, cfg.action_dim)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        prefix_keys: torch.Tensor,
        prefix_values: torch.Tensor,
    ) -> torch.Tensor:
        a = self.action_in(x_t)
        te = self.time(t)[:, None, :].expand(-1, a.shape[1], -1)
        x = self.time_mlp_out(F.silu(self.time_mlp_in(torch.cat([a, te], dim=-1)))) + self.pos
        for i, layer in enumerate(cast(list[KVLayer], self.layers)):
            h = layer.norm1(x)
            k, v = layer.kv(h)
            keys = torch.cat([prefix_keys[:, i], k], dim=2)  # the cached prefix, then the chunk
            values = torch.cat([prefix_values[:, i], v], dim=2)
            x = layer.mix(x, h, keys, values)
        return self.action_out(self.norm(x))


class VLAFlow(StackModel):
    def __init__(self, cfg: VLAFlowConfig) -> None:
        super().__init__()
        self.prefix = Prefix(cfg)
        self.expert = ActionExpert(cfg)

    def networks(self) -> dict[str, nn.Module]:
        return {"prefix": self.prefix, "expert": self.expert}
