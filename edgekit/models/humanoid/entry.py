"""``humanoid``: the zoo entry: presets, model spec (io + loop programs), registration."""

from __future__ import annotations

import math
from dataclasses import replace

from edgekit.models.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_depth,
    scale_hidden,
    scale_width,
)
from edgekit.models.humanoid.config import HumanoidConfig
from edgekit.models.humanoid.modeling import Humanoid
from edgekit.models.humanoid.program import HumanoidHistoryProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec


@register
class HumanoidEntry(ZooEntry):
    kind = "humanoid"
    category = "humanoid whole-body"
    summary = "HumanPlus HST transformer (8 x 84 -> 19) or HOVER MLP [512,256,128] on 25 x 63"
    presets = {
        "tiny": HumanoidConfig(width=32, depth=1, heads=2, ffn=64, context=4),
        "default": HumanoidConfig(),
        "hover": HumanoidConfig(arch="mlp", obs_dim=63, context=25),
        "tiny-hover": HumanoidConfig(arch="mlp", obs_dim=63, context=5, hidden=(64, 32)),
        # the closed-loop teacher of `edgekit eval --env reacher`: an MLP on the last 2 Reacher
        # observations (10-D) -> 2 joint torques, 50 Hz
        "reacher": HumanoidConfig(
            arch="mlp", obs_dim=10, act_dim=2, context=2, hidden=(128, 128), action_scale=1.0
        ),
    }

    def make(self, cfg: HumanoidConfig) -> StackModel:
        return Humanoid(cfg)

    def scaled(self, cfg: HumanoidConfig, width: float, depth: float) -> HumanoidConfig:
        # both architectures' sizes scale (only the one named by arch is built); kept: arch,
        # obs_dim, act_dim, context (the history the program carries), action_scale, heads
        check_factors(width, depth)
        return replace(
            cfg,
            width=scale_width(cfg.width, width, math.lcm(cfg.heads, 8)),
            ffn=scale_width(cfg.ffn, width),
            depth=scale_depth(cfg.depth, depth),
            hidden=scale_hidden(cfg.hidden, width, depth),
        )

    def spec(self, cfg: HumanoidConfig, preset: str) -> ModelSpec:
        policy = NetworkSpec(
            "policy",
            inputs=(TensorSpec("obs_history", ("batch", cfg.context, cfg.obs_dim)),),
            outputs=(TensorSpec("action", ("batch", cfg.act_dim)),),
        )
        program = ProgramSpec(
            HumanoidHistoryProgram.name,
            {
                "obs_dim": cfg.obs_dim,
                "act_dim": cfg.act_dim,
                "context": cfg.context,
                "action_scale": cfg.action_scale,
            },
        )
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=(policy,),
            program=program,
            programs={"history": program},
            hz=cfg.hz,
            config=config_dict(cfg),
        )
