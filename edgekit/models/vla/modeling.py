"""Chunked vision-language-action policy (ACT / SmolVLA style).

:class:`ChunkedVLA` follows ACT's inference path (LeRobot ``act``): a ResNet backbone shared by
the cameras, a 1x1 projection of its feature map to the transformer width, a transformer encoder
over [proprio, instruction, image tokens], and a decoder whose ``chunk`` learned queries
cross-attend to the encoder memory and are read out as a chunk of future actions. ACT's CVAE
latent is zero at inference, so its token is a constant and is left out here; the instruction
tokens stand in for the language conditioning of SmolVLA-style VLAs.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.models.base import (
    StackModel,
)
from edgekit.models.common import ResNet, Transformer
from edgekit.models.vla.config import VLAConfig


def feature_hw(size: int, stages: int) -> int:
    """Side of the :class:`ResNet` feature map for a ``size`` input with ``stages`` stages.

    The stem halves twice (7x7 s2 conv, 3x3 s2 max-pool), every stage after the first halves
    once; each uses padding, so sizes round up.
    """
    for _ in range(2 + stages - 1):
        size = (size + 1) // 2
    return size


class ChunkedVLA(nn.Module):
    """images (B, cams, 3, H, W), instruction (B, L), proprio (B, P) -> (B, chunk, action_dim)."""

    def __init__(
        self,
        *,
        cameras: int,
        image_size: int,
        proprio_dim: int,
        action_dim: int,
        chunk: int,
        vocab: int,
        instr_len: int,
        width: int,
        heads: int,
        ffn: int,
        enc_layers: int,
        dec_layers: int,
        backbone_widths: tuple[int, ...],
        backbone_blocks: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.backbone = ResNet(backbone_widths, backbone_blocks)
        self.proj = nn.Conv2d(self.backbone.out_channels, width, 1)
        side = feature_hw(image_size, len(backbone_widths))
        # learned camera + spatial position embeddings (ACT uses fixed 2D sinusoids; learned ones
        # export to the same Add and let the size follow the preset)
        self.cam_emb = nn.Parameter(torch.randn(1, cameras, 1, width) * 0.02)
        self.img_pos = nn.Parameter(torch.randn(1, 1, side * side, width) * 0.02)
        self.tok_emb = nn.Embedding(vocab, width)
        self.txt_pos = nn.Parameter(torch.randn(1, instr_len, width) * 0.02)
        self.proprio = nn.Linear(proprio_dim, width)
        self.prop_pos = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.encoder = Transformer(width, heads, ffn, enc_layers)
        self.queries = nn.Parameter(torch.randn(1, chunk, width) * 0.02)
        self.decoder = Transformer(width, heads, ffn, dec_layers, cross=True)
        self.head = nn.Linear(width, action_dim)

    def forward(
        self, images: torch.Tensor, instruction: torch.Tensor, proprio: torch.Tensor
    ) -> torch.Tensor:
        b, cams, c, h, w = images.shape
        # one backbone pass over every camera of every batch item (weights shared per camera)
        feat = self.proj(self.backbone(images.reshape(b * cams, c, h, w)))
        d = feat.shape[1]
        img = feat.reshape(b, cams, d, -1).transpose(2, 3) + self.cam_emb + self.img_pos
        txt = self.tok_emb(instruction) + self.txt_pos
        prop = self.proprio(proprio)[:, None] + self.prop_pos
        memory = self.encoder(torch.cat([prop, txt, img.reshape(b, -1, d)], dim=1))
        # repeat (a copy), not expand: a view of a Parameter that reaches a submodule under
        # inference_mode requires grad but has no grad_fn, which breaks FlopCounterMode's
        # module tracker (and .contiguous() is a no-op view at batch 1)
        queries = self.queries.repeat(b, 1, 1)
        return self.head(self.decoder(queries, memory))


class VLA(StackModel):
    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        self.policy = ChunkedVLA(
            cameras=cfg.cameras,
            image_size=cfg.image_size,
            proprio_dim=cfg.proprio_dim,
            action_dim=cfg.action_dim,
            chunk=cfg.chunk,
            vocab=cfg.vocab,
            instr_len=cfg.instr_len,
            width=cfg.width,
            heads=cfg.heads,
            ffn=cfg.ffn,
            enc_layers=cfg.enc_layers,
            dec_layers=cfg.dec_layers,
            backbone_widths=cfg.backbone_widths,
            backbone_blocks=cfg.backbone_blocks,
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}
