"""``reward-model``: the zoo entry: presets, model spec (io + loop programs), registration."""

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
from edgekit.models.reward_model.config import RewardModelConfig
from edgekit.models.reward_model.modeling import RewardModel
from edgekit.models.reward_model.program import RewardRerankProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec


@register
class RewardModelEntry(ZooEntry):
    kind = "reward-model"
    category = "reward model"
    summary = "LeRobot reward classifier (ResNet-10, 2 cams, 256 hidden) over 4 frames, SARM-style"
    presets: ClassVar[dict[str, RewardModelConfig]] = {
        "tiny": RewardModelConfig(
            frames=2,
            image_size=32,
            vocab=64,
            instr_len=4,
            width=32,
            heads=2,
            ffn=64,
            depth=1,
            backbone_widths=(8, 16),
            backbone_blocks=(1, 1),
            candidates=4,
        ),
        "default": RewardModelConfig(),
    }

    def make(self, cfg: RewardModelConfig) -> StackModel:
        return RewardModel(cfg)

    def scaled(self, cfg: RewardModelConfig, width: float, depth: float) -> RewardModelConfig:
        # kept: frames, cameras, image_size, vocab, instr_len, candidates (the network's io
        # and the program's params), temperature, heads, the number of ResNet stages
        check_factors(width, depth)
        return replace(
            cfg,
            width=scale_width(cfg.width, width, math.lcm(cfg.heads, 8)),
            ffn=scale_width(cfg.ffn, width),
            depth=scale_depth(cfg.depth, depth),
            backbone_widths=tuple(scale_width(w, width) for w in cfg.backbone_widths),
            backbone_blocks=tuple(scale_depth(n, depth) for n in cfg.backbone_blocks),
        )

    def spec(self, cfg: RewardModelConfig, preset: str) -> ModelSpec:
        size = cfg.image_size
        reward = NetworkSpec(
            "reward",
            inputs=(
                TensorSpec("frames", ("batch", cfg.frames, cfg.cameras, 3, size, size)),
                TensorSpec("instruction", ("batch", cfg.instr_len), "int64", "int", 0, cfg.vocab),
            ),
            outputs=(TensorSpec("reward", ("batch",)),),
        )
        program = ProgramSpec(
            RewardRerankProgram.name,
            {
                "candidates": cfg.candidates,
                "frames": cfg.frames,
                "cameras": cfg.cameras,
                "image_size": size,
                "instr_len": cfg.instr_len,
                "vocab": cfg.vocab,
                "temperature": cfg.temperature,
            },
        )
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=(reward,),
            program=program,
            programs={"rerank": program},
            hz=cfg.hz,
            config=config_dict(cfg),
        )
