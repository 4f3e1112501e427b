"""A Diffuser-style diffusion policy on diffusers' ``UNet1DModel``, declared as a tick.

The network is diffusers' temporal 1-D UNet (Janner et al., "Planning with Diffusion", 2022)
over an action chunk of 16 steps x 4 joints, conditioned on the last two normalised robot
states (broadcast over time as extra input channels). The tick around it is data: normalise
the state, keep a history of 2, 16 DDIM steps (the scheduler is diffusers'
``scheduler_config.json`` next to this file), unnormalise the chunk to joint units, and
execute 8 of its 16 actions before planning again.

    edgekit export examples/diffusion_unet1d/policy.py:make_policy --out out/unet1d
    edgekit bench out/unet1d --target cpu
    edgekit bench out/unet1d --loop num_inference_steps=4

Weights are a fixed-seed initialisation: the example measures the real tick of a real
architecture, not a trained policy (load your own with ``module.load_state_dict``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import UNet1DModel
from torch import nn

from edgekit.loader import UserModel
from edgekit.spec import TensorSpec

HERE = Path(__file__).resolve().parent
STATE, ACTION, HORIZON, HISTORY = 11, 4, 16, 2
# the dataset statistics a LeRobot-style policy keeps (here: a made-up arm's ranges)
STATE_MEAN = [0.0] * STATE
STATE_STD = [1.0] * 7 + [2.0] * 4
ACTION_MIN = [-1.5, -1.5, -2.0, -2.0]
ACTION_MAX = [1.5, 1.5, 2.0, 2.0]


class Denoiser(nn.Module):
    """(noisy chunk, timestep, state history) -> predicted noise, around ``UNet1DModel``."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = max(8, int(32 * width)) // 8 * 8
        self.unet = UNet1DModel(
            sample_size=HORIZON, in_channels=ACTION + STATE * HISTORY, out_channels=ACTION,
            extra_in_channels=0, time_embedding_type="positional", flip_sin_to_cos=False,
            use_timestep_embedding=True, freq_shift=1, block_out_channels=(c, 2 * c),
            down_block_types=("DownResnetBlock1D", "DownResnetBlock1D"),
            up_block_types=("UpResnetBlock1D",), mid_block_type="MidResTemporalBlock1D",
            out_block_type="OutConv1DBlock", act_fn="mish", norm_num_groups=8,
            layers_per_block=1, downsample_each_block=False,
        )  # fmt: skip

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor):
        b, t, _ = sample.shape
        c = cond.reshape(b, -1, 1).expand(-1, -1, t)
        x = torch.cat([sample.transpose(1, 2), c], dim=1)
        return self.unet(x, timestep).sample.transpose(1, 2)


def make_policy(width: float = 1.0, depth: float = 1.0, steps: int = 16) -> UserModel:
    """``width`` scales the UNet's channels (a distillation student: ``--width 0.5``); its
    depth is already the smallest UNet1DModel builds (one layer per block)."""
    if depth != 1.0:
        raise ValueError("depth: this UNet has one layer per block already; scale --width")
    torch.manual_seed(0)
    scheduler = json.loads((HERE / "scheduler_config.json").read_text())
    return UserModel(
        networks={"unet": Denoiser(width)},
        inputs={"unet": [
            TensorSpec("sample", ("batch", HORIZON, ACTION)),
            TensorSpec("timestep", ("batch",), sampler="uniform", low=0, high=100),
            TensorSpec("cond", ("batch", HISTORY, STATE)),
        ]},
        tick={
            "observation": [{"name": "state", "shape": [STATE]}],
            "blocks": [
                {"block": "normalize", "input": "state", "mean": STATE_MEAN, "std": STATE_STD},
                {"block": "history", "input": "state", "length": HISTORY, "output": "states"},
                {"block": "denoise", "network": "unet", "shape": [HORIZON, ACTION],
                 "inputs": {"cond": "states"}, "scheduler": scheduler,
                 "num_inference_steps": steps, "result": "chunk"},
                {"block": "unnormalize", "input": "chunk", "mode": "min_max",
                 "min": ACTION_MIN, "max": ACTION_MAX},
                {"block": "chunk", "input": "chunk", "execute": 8, "output": "action"},
            ],
            "outputs": ["action"],
        },
        hz=10.0,
    )  # fmt: skip
