"""``humanoid``: whole-body controller with a carried observation history, 50 Hz."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.nets.humanoid import HoverMLP, HSTPolicy
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec
from edgekit.zoo.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_depth,
    scale_hidden,
    scale_width,
)


@dataclass(frozen=True)
class HumanoidConfig:
    arch: str = "hst"  # "hst" (HumanPlus transformer) or "mlp" (HOVER)
    obs_dim: int = 84
    act_dim: int = 19
    context: int = 8
    width: int = 128
    depth: int = 4
    heads: int = 4
    ffn: int = 512
    hidden: tuple[int, ...] = (512, 256, 128)
    action_scale: float = 0.25
    hz: float = 50.0


class Humanoid(StackModel):
    def __init__(self, cfg: HumanoidConfig) -> None:
        super().__init__()
        if cfg.arch == "hst":
            self.policy: nn.Module = HSTPolicy(
                cfg.obs_dim, cfg.act_dim, cfg.context, cfg.width, cfg.depth, cfg.heads, cfg.ffn
            )
        else:
            self.policy = HoverMLP(cfg.obs_dim, cfg.act_dim, cfg.context, cfg.hidden)

    def networks(self) -> dict[str, nn.Module]:
        return {"policy": self.policy}


@register_program
class HumanoidHistoryProgram(LoopProgram):
    """normalize proprio -> push into the history ring -> policy -> PD joint targets."""

    name = "humanoid-history"
    host_stages = ("normalize", "history", "pd-targets")

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec("proprio", (self.params["obs_dim"],)),)

    def calls_per_tick(self) -> dict[str, int]:
        return {"policy": 1}

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        self.history = np.zeros((1, p["context"], p["obs_dim"]), np.float32)
        self.default_pose = np.zeros(p["act_dim"], np.float32)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        with ctx.host("normalize"):
            x = np.clip(obs["proprio"].astype(np.float32), -5.0, 5.0)
        with ctx.host("history"):
            self.history[0, :-1] = self.history[0, 1:]
            self.history[0, -1] = x
        action = ctx.call("policy", {"obs_history": self.history})["action"][0]
        with ctx.host("pd-targets"):
            targets = self.default_pose + self.params["action_scale"] * np.clip(action, -1, 1)
        return {"action": action, "joint_targets": targets.astype(np.float32)}


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
