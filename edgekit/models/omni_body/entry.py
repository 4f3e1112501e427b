"""``omni-body``: the zoo entry: presets, model spec (io + loop programs), registration."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, ClassVar

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
from edgekit.models.omni_body.config import OmniBodyConfig
from edgekit.models.omni_body.modeling import OmniBody
from edgekit.models.omni_body.program import EMBODIMENTS, MORPH_DIM, OBS_PER_LIMB, OmniBodyProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec


@register
class OmniBodyEntry(ZooEntry):
    kind = "omni-body"
    category = "cross-embodiment policy"
    summary = (
        "MetaMorph limb-token transformer (width 128, 5 layers, 2 heads, FFN 1024, 24 limbs) "
        "driving a 7-DoF arm, a 12-DoF quadruped and a 19-DoF humanoid with one set of weights"
    )
    presets: ClassVar[dict[str, Any]] = {
        "tiny": OmniBodyConfig(
            width=32, depth=1, heads=2, ffn=64, max_limbs=20, decoder_hidden=(32,)
        ),
        "default": OmniBodyConfig(),
    }

    def make(self, cfg: OmniBodyConfig) -> StackModel:
        return OmniBody(cfg)

    def scaled(self, cfg: OmniBodyConfig, width: float, depth: float) -> OmniBodyConfig:
        # kept: max_limbs, act_per_limb (the limb-token io), action_scale, heads
        check_factors(width, depth)
        return replace(
            cfg,
            width=scale_width(cfg.width, width, math.lcm(cfg.heads, 8)),
            ffn=scale_width(cfg.ffn, width),
            depth=scale_depth(cfg.depth, depth),
            decoder_hidden=scale_hidden(cfg.decoder_hidden, width, depth),
        )

    def spec(self, cfg: OmniBodyConfig, preset: str) -> ModelSpec:
        b, n = "batch", cfg.max_limbs
        policy = NetworkSpec(
            "policy",
            inputs=(
                TensorSpec("limb_obs", (b, n, OBS_PER_LIMB)),
                TensorSpec("morphology", (b, n, MORPH_DIM)),
                TensorSpec("pad_mask", (b, n), "bool"),
            ),
            outputs=(TensorSpec("limb_action", (b, n, cfg.act_per_limb)),),
        )
        programs = {
            name: ProgramSpec(
                OmniBodyProgram.name,
                {
                    "embodiment": name,
                    "max_limbs": n,
                    "obs_per_limb": OBS_PER_LIMB,
                    "act_per_limb": cfg.act_per_limb,
                    "action_scale": cfg.action_scale,
                },
            )
            for name in EMBODIMENTS
        }
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=(policy,),
            program=programs["humanoid19"],
            programs=programs,
            hz=cfg.hz,
            config=config_dict(cfg),
        )
