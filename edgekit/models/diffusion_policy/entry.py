"""``diffusion-policy``: the zoo entry: presets, model spec (io + loop programs), registration."""

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
    scale_width,
)
from edgekit.models.diffusion_policy.config import DiffusionPolicyConfig
from edgekit.models.diffusion_policy.modeling import (
    DiffusionPolicy,
)
from edgekit.models.diffusion_policy.program import DiffusionSamplerProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec, Tolerance


def sampler_spec(cfg: DiffusionPolicyConfig, scheduler: str, steps: int) -> ProgramSpec:
    """The diffusion-sampler program for ``cfg`` with a DDIM or DDPM scheduler of K steps."""
    return ProgramSpec(
        DiffusionSamplerProgram.name,
        {
            "scheduler": scheduler,
            "num_inference_steps": steps,
            "num_train_timesteps": cfg.num_train_timesteps,
            "beta_schedule": "squaredcos_cap_v2",
            "horizon": cfg.horizon,
            "action_dim": cfg.action_dim,
            "n_action_steps": cfg.n_action_steps,
            "action_start": cfg.obs_horizon - 1,
            "obs_horizon": cfg.obs_horizon,
            "proprio_dim": cfg.proprio_dim,
            "image_size": cfg.image_size,
            "action_low": [-1.0] * cfg.action_dim,
            "action_high": [1.0] * cfg.action_dim,
            **({"proprio_scale": list(cfg.proprio_scale)} if cfg.proprio_scale else {}),
        },
    )


TINY = DiffusionPolicyConfig(
    widths=(8, 16),
    blocks=(1, 1),
    keypoints=8,
    feature_dim=16,
    down_dims=(16, 32),
    step_embed_dim=16,
)


@register
class DiffusionPolicyEntry(ZooEntry):
    kind = "diffusion-policy"
    category = "diffusion policy"
    summary = "Chi et al. 2023: ResNet-18 + SpatialSoftmax obs encoder, FiLM ConditionalUnet1D"
    presets = {
        "tiny": TINY,
        # the closed-loop teacher of `edgekit eval --env reacher`: 96 x 96 MuJoCo camera
        # frames + the 10-D Reacher observation, chunks of 2 joint-position commands (relative
        # to the joints at the tick, / pi; the arm's PD tracks them), replanning every 8 steps
        "reacher": DiffusionPolicyConfig(
            action_dim=2,
            proprio_dim=10,
            widths=(16, 32),
            blocks=(1, 1),
            keypoints=16,
            feature_dim=32,
            down_dims=(64, 128),
            step_embed_dim=32,
            # cos/sin of the joints, target x/y (+-0.2 m), joint velocities (~+-10 rad/s),
            # fingertip - target x/y
            proprio_scale=(1, 1, 1, 1, 5, 5, 0.1, 0.1, 5, 5),
        ),
        "default": DiffusionPolicyConfig(),
        "large": DiffusionPolicyConfig(down_dims=(256, 512, 1024)),
    }

    def make(self, cfg: DiffusionPolicyConfig) -> StackModel:
        return DiffusionPolicy(cfg)

    def scaled(
        self, cfg: DiffusionPolicyConfig, width: float, depth: float
    ) -> DiffusionPolicyConfig:
        """ResNet ``widths``, SpatialSoftmax ``keypoints`` (only ``feature_dim`` reaches
        ``cond``), UNet ``down_dims`` and ``step_embed_dim`` scale with width, ResNet ``blocks``
        with depth. Kept: the number of ResNet stages and UNet levels (the horizon must divide
        by 2 ** (levels - 1)), ``feature_dim`` and the obs/proprio/action sizes (they set
        ``cond`` and the denoiser's io), ``kernel``, ``groups`` and the scheduler settings."""
        check_factors(width, depth)
        gn = math.lcm(cfg.groups, 8)  # keep every GroupNorm at ``groups`` groups
        return replace(
            cfg,
            widths=tuple(scale_width(w, width) for w in cfg.widths),
            blocks=tuple(scale_depth(n, depth) for n in cfg.blocks),
            keypoints=scale_width(cfg.keypoints, width),
            down_dims=tuple(scale_width(w, width, gn) for w in cfg.down_dims),
            step_embed_dim=scale_width(cfg.step_embed_dim, width),
        )

    def spec(self, cfg: DiffusionPolicyConfig, preset: str) -> ModelSpec:
        t, s = cfg.obs_horizon, cfg.image_size
        encoder = NetworkSpec(
            "encoder",
            inputs=(
                TensorSpec("image", ("batch", t, 3, s, s), sampler="uniform", low=-1.0),
                TensorSpec("proprio", ("batch", t, cfg.proprio_dim)),
            ),
            outputs=(TensorSpec("cond", ("batch", cfg.cond_dim)),),
        )
        denoiser = NetworkSpec(
            "denoiser",
            inputs=(
                TensorSpec("sample", ("batch", cfg.horizon, cfg.action_dim)),
                TensorSpec(
                    "timestep", ("batch",), sampler="uniform", high=cfg.num_train_timesteps - 1
                ),
                TensorSpec("cond", ("batch", cfg.cond_dim)),
            ),
            outputs=(TensorSpec("noise_pred", ("batch", cfg.horizon, cfg.action_dim)),),
        )
        k = cfg.num_inference_steps
        program = sampler_spec(cfg, "ddim", k)
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=(encoder, denoiser),
            program=program,
            programs={
                f"ddim{k}": program,
                "ddim4": sampler_spec(cfg, "ddim", 4),
                f"ddpm{cfg.num_train_timesteps}": sampler_spec(
                    cfg, "ddpm", cfg.num_train_timesteps
                ),
            },
            hz=cfg.hz,
            # torch vs ORT (FP32, CPU) over ddim16/ddim4/ddpm100, all presets: worst max-abs
            # 1.1e-5 at max|ref| ~1 (the 16 DDIM calls amplify the denoiser's 1e-6 error most),
            # 1 - cosine <= 1e-11; bound ~10x that, cosine held at the FP32 resolution limit.
            tick_tolerance=Tolerance(atol=1e-5, rtol=1e-4, min_cosine=0.999999),
            config=config_dict(cfg),
        )
