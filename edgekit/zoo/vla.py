"""``vla``: ACT / SmolVLA-style chunked VLA; one forward per tick yields an action chunk, 50 Hz."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from torch import nn

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.nets.vla import ChunkedVLA
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec
from edgekit.zoo.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_depth,
    scale_width,
)
from edgekit.zoo.hostops import ImageNormalizer

# ImageNet statistics: the ResNet backbones of ACT / LeRobot are ImageNet-pretrained


@dataclass(frozen=True)
class VLAConfig:
    cameras: int = 2
    # ACT trains on 480x640; 224x224 (7x7 tokens per camera) is the usual edge resize and keeps
    # the encoder at ~115 tokens
    image_size: int = 224
    proprio_dim: int = 14
    action_dim: int = 14
    # LeRobot ACT defaults to 100; 50 is SmolVLA's chunk and the one ALOHA runs at 50 Hz (1 s)
    chunk: int = 50
    # a 32000-token LLM vocabulary would be a 16M-parameter embedding, about half the policy;
    # an edge VLA with a fixed task set needs far fewer tokens
    vocab: int = 1024
    instr_len: int = 16
    width: int = 512
    heads: int = 8
    ffn: int = 3200
    enc_layers: int = 4
    dec_layers: int = 1  # ACT builds 7 decoder layers but only the first one is used
    backbone_widths: tuple[int, ...] = (64, 128, 256, 512)  # ResNet-18
    backbone_blocks: tuple[int, ...] = (2, 2, 2, 2)
    action_limit: float = 3.14159  # joint-angle limits (rad), clipped on the host
    hz: float = 50.0  # ACT / ALOHA control rate


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


@register_program
class VLAChunkProgram(LoopProgram):
    """Normalize images and proprio -> policy once -> unnormalize and clip the action chunk.

    One tick is one forward pass. The robot executes the returned chunk over the following
    ticks (or blends overlapping chunks with ACT's temporal ensembling), so a real loop calls
    the policy only every few ticks; benching every tick as a forward gives the worst-case tick.
    The instruction arrives already tokenized: tokenizing happens once per task, not per tick.
    """

    name = "vla-chunk"
    host_stages = ("preprocess", "postprocess")

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        p = self.params
        size = p["image_size"]
        return (
            TensorSpec("images", (p["cameras"], size, size, 3), "uint8", "image"),
            TensorSpec("instruction", (p["instr_len"],), "int64", "int", 0, p["vocab"]),
            TensorSpec("proprio", (p["proprio_dim"],)),
        )

    def calls_per_tick(self) -> dict[str, int]:
        return {"policy": 1}

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        f32 = np.float32
        self.normalize = ImageNormalizer()
        self.proprio_mean = np.asarray(p["proprio_mean"], f32)
        self.proprio_std = np.asarray(p["proprio_std"], f32)
        self.action_mean = np.asarray(p["action_mean"], f32)
        self.action_std = np.asarray(p["action_std"], f32)
        self.action_low = np.asarray(p["action_low"], f32)
        self.action_high = np.asarray(p["action_high"], f32)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        with ctx.host("preprocess"):
            images = self.normalize(obs["images"])[None]  # (1, cams, 3, H, W)
            proprio = (obs["proprio"].astype(np.float32) - self.proprio_mean) / self.proprio_std
            feeds: Arrays = {
                "images": images,
                "instruction": obs["instruction"].astype(np.int64)[None],
                "proprio": proprio[None].astype(np.float32),
            }
        chunk = ctx.call("policy", feeds)["action_chunk"][0]
        with ctx.host("postprocess"):
            chunk = chunk * self.action_std + self.action_mean
            chunk = np.clip(chunk, self.action_low, self.action_high).astype(np.float32)
        return {"action_chunk": chunk, "action": chunk[0].copy()}


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
