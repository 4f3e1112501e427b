"""``diffusion-policy``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass


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
