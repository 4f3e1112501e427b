"""Language-conditioned reward model over a short multi-camera clip.

:class:`ClipRewardModel` follows LeRobot's reward classifier (a small ResNet per camera image,
pooled, projected to a 256-wide hidden size) extended SARM-style to a few frames: every image's
pooled feature becomes one token tagged with frame and camera embeddings, the instruction tokens
are embedded, and a transformer over [CLS, text, image tokens] reads a scalar score from CLS.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.models.base import (
    StackModel,
)
from edgekit.models.common import MLP, ResNet, Transformer
from edgekit.models.reward_model.config import RewardModelConfig


class ClipRewardModel(nn.Module):
    """frames (B, T, cams, 3, H, W), instruction (B, L) -> reward (B,)."""

    def __init__(
        self,
        *,
        frames: int,
        cameras: int,
        vocab: int,
        instr_len: int,
        width: int,
        heads: int,
        ffn: int,
        depth: int,
        backbone_widths: tuple[int, ...],
        backbone_blocks: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.backbone = ResNet(backbone_widths, backbone_blocks)
        self.img_proj = nn.Linear(self.backbone.out_channels, width)
        self.frame_emb = nn.Parameter(torch.randn(1, frames, 1, width) * 0.02)
        self.cam_emb = nn.Parameter(torch.randn(1, 1, cameras, width) * 0.02)
        self.tok_emb = nn.Embedding(vocab, width)
        self.txt_pos = nn.Parameter(torch.randn(1, instr_len, width) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.body = Transformer(width, heads, ffn, depth)
        self.head = MLP(width, [width], 1, act=nn.GELU)

    def forward(self, frames: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        b, t, cams, c, h, w = frames.shape
        # one backbone pass over every image of the clip; global average pool per image
        feat = self.backbone(frames.reshape(b * t * cams, c, h, w)).mean(dim=(2, 3))
        img = self.img_proj(feat).reshape(b, t, cams, -1) + self.frame_emb + self.cam_emb
        txt = self.tok_emb(instruction) + self.txt_pos
        # cat copies, so CLS reaches the transformer as a plain tensor (see nets/vla.py)
        cls = self.cls.expand(b, -1, -1)
        x = self.body(torch.cat([cls, txt, img.reshape(b, t * cams, -1)], dim=1))
        # (B, 1) -> (B,): the spec's output is one score per batch item
        return self.head(x[:, 0]).squeeze(-1)


class RewardModel(StackModel):
    def __init__(self, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.reward = ClipRewardModel(
            frames=cfg.frames,
            cameras=cfg.cameras,
            vocab=cfg.vocab,
            instr_len=cfg.instr_len,
            width=cfg.width,
            heads=cfg.heads,
            ffn=cfg.ffn,
            depth=cfg.depth,
            backbone_widths=cfg.backbone_widths,
            backbone_blocks=cfg.backbone_blocks,
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"reward": self.reward}
