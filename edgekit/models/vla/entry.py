"""``vla``: the zoo entry: presets, model spec (io + loop programs), registration."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import ClassVar

from edgekit.models.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_depth,
    scale_width,
)
from edgekit.models.vla.config import VLAConfig
from edgekit.models.vla.modeling import VLA
from edgekit.models.vla.program import VLAChunkProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec


@register
class VLAEntry(ZooEntry):
    kind = "vla"
    category = "VLA (chunked)"
    summary = "ACT: ResNet-18 per camera + transformer 512w/8h, 4 enc / 1 dec, 50 x 14 chunk"
    presets: ClassVar[dict[str, VLAConfig]] = {
        "tiny": VLAConfig(
            image_size=64,
            chunk=8,
            vocab=64,
            instr_len=4,
            width=32,
            heads=2,
            ffn=64,
            enc_layers=1,
            dec_layers=1,
            backbone_widths=(8, 16),
            backbone_blocks=(1, 1),
        ),
        "default": VLAConfig(),
    }

    def make(self, cfg: VLAConfig) -> StackModel:
        return VLA(cfg)

    def scaled(self, cfg: VLAConfig, width: float, depth: float) -> VLAConfig:
        # kept: cameras, image_size, proprio_dim, action_dim, chunk, vocab, instr_len (the
        # policy's io and the program's params), heads, and the number of ResNet stages (it
        # sets the token grid side)
        check_factors(width, depth)
        return replace(
            cfg,
            width=scale_width(cfg.width, width, math.lcm(cfg.heads, 8)),
            ffn=scale_width(cfg.ffn, width),
            enc_layers=scale_depth(cfg.enc_layers, depth),
            dec_layers=scale_depth(cfg.dec_layers, depth),
            backbone_widths=tuple(scale_width(w, width) for w in cfg.backbone_widths),
            backbone_blocks=tuple(scale_depth(n, depth) for n in cfg.backbone_blocks),
        )

    def spec(self, cfg: VLAConfig, preset: str) -> ModelSpec:
        size = cfg.image_size
        policy = NetworkSpec(
            "policy",
            inputs=(
                TensorSpec("images", ("batch", cfg.cameras, 3, size, size)),
                TensorSpec("instruction", ("batch", cfg.instr_len), "int64", "int", 0, cfg.vocab),
                TensorSpec("proprio", ("batch", cfg.proprio_dim)),
            ),
            outputs=(TensorSpec("action_chunk", ("batch", cfg.chunk, cfg.action_dim)),),
        )
        # placeholder dataset statistics: identity normalization until real ones are loaded
        zeros_p, ones_p = [0.0] * cfg.proprio_dim, [1.0] * cfg.proprio_dim
        zeros_a, ones_a = [0.0] * cfg.action_dim, [1.0] * cfg.action_dim
        program = ProgramSpec(
            VLAChunkProgram.name,
            {
                "cameras": cfg.cameras,
                "image_size": size,
                "instr_len": cfg.instr_len,
                "vocab": cfg.vocab,
                "proprio_dim": cfg.proprio_dim,
                "proprio_mean": zeros_p,
                "proprio_std": ones_p,
                "action_mean": zeros_a,
                "action_std": ones_a,
                "action_low": [-cfg.action_limit] * cfg.action_dim,
                "action_high": [cfg.action_limit] * cfg.action_dim,
            },
        )
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=(policy,),
            program=program,
            programs={"chunk": program},
            hz=cfg.hz,
            config=config_dict(cfg),
        )
