"""``diffusion-policy``: Chi et al.'s visuomotor Diffusion Policy, action chunks at 10 Hz."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.nets.diffusion_policy import ConditionalUnet1D, DiffusionObsEncoder
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec, Tolerance
from edgekit.zoo.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_depth,
    scale_width,
)


@dataclass(frozen=True)
class DiffusionPolicyConfig:
    horizon: int = 16
    action_dim: int = 7
    n_action_steps: int = 8
    obs_horizon: int = 2
    proprio_dim: int = 9
    image_size: int = 96
    crop: int = 84  # Chi's eval-time center crop of the 96 x 96 camera image
    widths: tuple[int, ...] = (64, 128, 256, 512)  # ResNet-18
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    keypoints: int = 32
    feature_dim: int = 64
    down_dims: tuple[int, ...] = (128, 256, 512)
    step_embed_dim: int = 128
    kernel: int = 5
    groups: int = 8
    num_train_timesteps: int = 100
    num_inference_steps: int = 16
    hz: float = 10.0
    # per-dimension proprio scale applied in pre-processing (Chi's normalizer to about
    # [-1, 1]); None: proprio as given
    proprio_scale: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.horizon % 2 ** (len(self.down_dims) - 1):
            raise ValueError(f"horizon {self.horizon} must divide by 2^(len(down_dims) - 1)")
        if self.obs_horizon - 1 + self.n_action_steps > self.horizon:
            raise ValueError("obs_horizon - 1 + n_action_steps exceeds the horizon")

    @property
    def cond_dim(self) -> int:
        return self.obs_horizon * (self.feature_dim + self.proprio_dim)


class DiffusionPolicy(StackModel):
    def __init__(self, cfg: DiffusionPolicyConfig) -> None:
        super().__init__()
        self.encoder = DiffusionObsEncoder(
            cfg.obs_horizon,
            cfg.proprio_dim,
            cfg.widths,
            cfg.blocks,
            cfg.keypoints,
            cfg.feature_dim,
            cfg.image_size,
            cfg.crop,
        )
        self.denoiser = ConditionalUnet1D(
            cfg.action_dim, cfg.cond_dim, cfg.down_dims, cfg.step_embed_dim, cfg.kernel, cfg.groups
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "denoiser": self.denoiser}


def cosine_alphas_cumprod(n: int, max_beta: float = 0.999) -> np.ndarray:
    """diffusers' ``squaredcos_cap_v2`` schedule (Nichol & Dhariwal): cumulative alpha products."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return np.cumprod(1.0 - np.asarray(betas, np.float64))


@register_program
class DiffusionSamplerProgram(LoopProgram):
    """encode obs once -> K denoiser calls with a DDIM (eta=0) or DDPM update -> action chunk.

    The scheduler follows diffusers as configured by Chi: epsilon prediction, clip_sample to
    [-1, 1], "leading" timestep spacing, DDIM with set_alpha_to_one, DDPM fixed_small variance.
    Step-distilled students give explicit ``timesteps`` (descending; each DDIM step goes to the
    next one, the last to the clean sample), as diffusers' custom-timestep schedulers do.
    """

    name = "diffusion-sampler"
    host_stages = ("preprocess", "scheduler", "postprocess")

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        p = self.params
        n, k = int(p["num_train_timesteps"]), int(p["num_inference_steps"])
        if not 0 < k <= n:
            raise ValueError(f"num_inference_steps {k} not in [1, {n}]")
        if p["scheduler"] not in ("ddim", "ddpm"):
            raise ValueError(f"scheduler {p['scheduler']!r} is not 'ddim' or 'ddpm'")
        if p.get("beta_schedule", "squaredcos_cap_v2") != "squaredcos_cap_v2":
            raise ValueError(f"beta_schedule {p['beta_schedule']!r}: only squaredcos_cap_v2")
        ratio = n // k
        if p.get("timesteps"):  # explicit, descending; each step goes to the next, then to 0
            self.timesteps = [int(t) for t in p["timesteps"]]
            if (
                len(self.timesteps) != k
                or any(
                    not 0 <= b < a < n
                    for a, b in zip(self.timesteps, self.timesteps[1:], strict=False)
                )
                or not 0 <= self.timesteps[-1] < n
            ):
                raise ValueError(f"timesteps {self.timesteps}: need {k} descending in [0, {n})")
            prevs = [*self.timesteps[1:], -1]
        else:  # diffusers' "leading" spacing
            self.timesteps = [i * ratio for i in reversed(range(k))]
            prevs = [t - ratio for t in self.timesteps]
        # coefficients in float64, applied as float32 scalars so the sample stays float32
        ac = cosine_alphas_cumprod(n)
        self.coefs = [
            self._coefs(ac, t, prev) for t, prev in zip(self.timesteps, prevs, strict=True)
        ]
        self.low = np.asarray(p["action_low"], np.float32)
        self.high = np.asarray(p["action_high"], np.float32)

    def _coefs(self, ac: np.ndarray, t: int, prev: int) -> tuple[np.float32, ...]:
        a_t, a_prev = ac[t], (ac[prev] if prev >= 0 else 1.0)  # alpha_prod_t, alpha_prod_t_prev
        # x0 = (x - sqrt(1 - a_t) eps) / sqrt(a_t)
        c = [1 / math.sqrt(a_t), math.sqrt(1 - a_t) / math.sqrt(a_t)]
        if self.params["scheduler"] == "ddim":  # x' = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps
            c += [math.sqrt(a_prev), math.sqrt(1 - a_prev), 0.0, 0.0]
        else:  # posterior mean q(x_prev | x_t, x0) + fixed_small variance noise
            alpha_t = a_t / a_prev
            beta_t = 1 - alpha_t
            var = max((1 - a_prev) / (1 - a_t) * beta_t, 1e-20) if t > 0 else 0.0
            c += [math.sqrt(a_prev) * beta_t / (1 - a_t), 0.0]
            c += [math.sqrt(alpha_t) * (1 - a_prev) / (1 - a_t), math.sqrt(var)]
        return tuple(np.float32(v) for v in c)

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        p = self.params
        size = p.get("image_size", 96)
        return (
            TensorSpec("image", (p["obs_horizon"], size, size, 3), "uint8", sampler="image"),
            TensorSpec("proprio", (p["obs_horizon"], p["proprio_dim"])),
        )

    def calls_per_tick(self) -> dict[str, int]:
        return {"encoder": 1, "denoiser": len(self.timesteps)}

    def step(self, x: np.ndarray, eps: np.ndarray, i: int) -> np.ndarray:
        """One scheduler update of the sample ``x`` given the predicted noise at step ``i``."""
        inv_sqrt_a, sqrt_ratio, c_x0, c_eps, c_x, sigma = self.coefs[i]
        x0 = np.clip(inv_sqrt_a * x - sqrt_ratio * eps, -1.0, 1.0)  # diffusers clip_sample
        if self.params["scheduler"] == "ddim":
            # eps is used as predicted (use_clipped_model_output=False), as in diffusers
            return c_x0 * x0 + c_eps * eps
        out = c_x0 * x0 + c_x * x
        if sigma > 0:
            out = out + sigma * self.rng.standard_normal(x.shape).astype(np.float32)
        return out

    def preprocess(self, obs: Arrays) -> tuple[np.ndarray, np.ndarray]:
        """Encoder inputs of one observation: images to [-1, 1] NCHW, proprio scaled."""
        image = obs["image"].transpose(0, 3, 1, 2)[None].astype(np.float32)
        image = image * np.float32(1 / 127.5) - np.float32(1.0)
        proprio = obs["proprio"].astype(np.float32)[None]
        if self.params.get("proprio_scale"):
            proprio = proprio * np.asarray(self.params["proprio_scale"], np.float32)
        return image, proprio

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        p = self.params
        with ctx.host("preprocess"):
            image, proprio = self.preprocess(obs)
        cond = ctx.call("encoder", {"image": image, "proprio": proprio})["cond"]
        with ctx.host("scheduler"):
            x = self.rng.standard_normal((1, p["horizon"], p["action_dim"])).astype(np.float32)
        for i, t in enumerate(self.timesteps):
            feeds = {"sample": x, "timestep": np.full((1,), t, np.float32), "cond": cond}
            eps = ctx.call("denoiser", feeds)["noise_pred"]
            with ctx.host("scheduler"):
                x = self.step(x, eps, i)
        with ctx.host("postprocess"):
            chunk = (np.clip(x[0], -1.0, 1.0) + 1) * np.float32(0.5) * (self.high - self.low)
            chunk = (chunk + self.low).astype(np.float32)
            # Chi executes the steps from the current observation on: index obs_horizon - 1
            start = p.get("action_start", p["obs_horizon"] - 1)
            actions = chunk[start : start + p["n_action_steps"]]
        return {"action_chunk": chunk, "actions": actions}


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
