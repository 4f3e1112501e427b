"""LeRobot's ``DiffusionPolicy`` as an edgekit factory: LeRobot's own modules as two networks,
LeRobot's inference loop (normalisation, observation history, sampler, action queue) as a
declared tick.

Written over LeRobot >= 0.4, the layout with ``lerobot.policies.diffusion`` and the processor
pipeline (``lerobot.processor``) that normalises outside the policy: 0.4.4 (the last release
for Python 3.10/3.11) and 0.6.1 (Python >= 3.12) have the same inference code for what is used
here. Older releases (``lerobot.common.policies...``, ``policies/normalize.py`` buffers) are
not supported.

How LeRobot's inference maps to the tick (``lerobot/policies/diffusion/modeling_diffusion.py``
and ``lerobot/processor/normalize_processor.py``):

* ``normalize``: the preprocessor's ``NormalizerProcessorStep``, with its stats and its
  ``norm_map`` per feature type (DiffusionConfig's default: images MEAN_STD, state and action
  MIN_MAX). Cameras come in as the robot hands them over, uint8 ``(H, W, 3)``: LeRobot's float
  ``[0, 1]`` CHW image is ``uint8 / 255``, so the image stats are scaled by 255 and the encoder
  moves the channels first.
* ``history``: ``DiffusionPolicy.select_action``'s queues (``populate_queues``: the first
  observation fills all ``n_obs_steps``), one per observation feature.
* ``call encoder``: ``DiffusionModel._prepare_global_conditioning`` (the RGB encoder over
  every camera and step, concatenated with the state and environment state, flattened).
* ``denoise``: ``DiffusionModel.conditional_sample``: Gaussian noise ``(horizon, action_dim)``,
  then per inference step one ``DiffusionConditionalUnet1d`` call (int64 timestep) and one
  step of the DDPM/DDIM scheduler LeRobot builds in ``_make_noise_scheduler`` from the config.
* ``unnormalize``: the postprocessor's ``UnnormalizerProcessorStep`` on ``action``.
* ``chunk``: ``generate_actions`` keeps rows ``n_obs_steps - 1`` to
  ``n_obs_steps - 1 + n_action_steps`` of the chunk; ``select_action`` pops one a tick.

    edgekit export examples/lerobot_diffusion/policy.py:make_policy --out out/lerobot-dp
    edgekit bench out/lerobot-dp --loop num_inference_steps=10

``make_policy()`` builds a fresh policy with PushT's configuration and fixed-seed weights
(made-up PushT-like stats); ``make_policy("lerobot/diffusion_pusht")`` (``make_pusht``; a hub
id, or a folder saved by LeRobot >= 0.4) loads a trained one with ``from_pretrained``, and its
stats from its processors.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionModel, DiffusionPolicy
from lerobot.policies.diffusion.processor_diffusion import make_diffusion_pre_post_processors
from lerobot.processor import NormalizerProcessorStep, UnnormalizerProcessorStep
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE
from torch import nn

from edgekit.loader import UserModel
from edgekit.spec import TensorSpec

HZ = 10.0  # PushT's control rate (LeRobot's gym-pusht env runs at 10 fps)
EPS = 1e-8  # edgekit's normalize blocks use LeRobot's default eps
MAX_EXTRA = 4  # cameras + environment state the encoder takes beside the state

# LeRobot's PushT diffusion configuration, spelled out (DiffusionConfig's defaults changed in
# 0.6: horizon 64, ImageNet backbone...); keyword arguments of make_policy override any of it.
PUSHT: dict[str, Any] = {
    "n_obs_steps": 2, "horizon": 16, "n_action_steps": 8,
    "vision_backbone": "resnet18", "pretrained_backbone_weights": None, "use_group_norm": True,
    "crop_shape": (84, 84), "crop_is_random": True, "spatial_softmax_num_keypoints": 32,
    "use_separate_rgb_encoder_per_camera": False,
    "down_dims": (512, 1024, 2048), "kernel_size": 5, "n_groups": 8,
    "diffusion_step_embed_dim": 128, "use_film_scale_modulation": True,
    "noise_scheduler_type": "DDPM", "num_train_timesteps": 100,
    "beta_schedule": "squaredcos_cap_v2", "beta_start": 0.0001, "beta_end": 0.02,
    "prediction_type": "epsilon", "clip_sample": True, "clip_sample_range": 1.0,
    "num_inference_steps": None,
}  # fmt: skip
PUSHT_INPUTS = {
    "observation.image": PolicyFeature(type=FeatureType.VISUAL, shape=(3, 96, 96)),
    "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(2,)),
}
PUSHT_OUTPUTS = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(2,))}


def pusht_stats() -> dict[str, dict[str, torch.Tensor]]:
    """Made-up PushT-like dataset stats (the agent and the target live in a 512 x 512 px
    board) for a policy built from scratch; a pretrained policy brings its own. Image stats are
    per channel, ``(3, 1, 1)`` as LeRobot's ``compute_stats`` writes them."""
    return {
        "observation.image": {
            "mean": torch.tensor([0.485, 0.456, 0.406]).reshape(3, 1, 1),
            "std": torch.tensor([0.229, 0.224, 0.225]).reshape(3, 1, 1),
        },
        "observation.state": {
            "min": torch.tensor([13.456, 32.938]),
            "max": torch.tensor([496.146, 510.958]),
        },
        ACTION: {"min": torch.tensor([12.0, 25.0]), "max": torch.tensor([511.0, 511.0])},
    }


def lerobot_policy(pretrained: str | None = None, **config: Any) -> tuple[Any, Any, Any]:
    """LeRobot's own objects: ``(DiffusionPolicy, preprocessor, postprocessor)``, on the CPU and
    in eval mode. Fresh (fixed seed, so two calls give the same weights) with PushT's
    configuration and ``config`` overrides, or ``from_pretrained(pretrained)``."""
    if pretrained is not None:
        if config:
            raise TypeError(f"configuration overrides {sorted(config)} apply to a fresh policy")
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import make_pre_post_processors

        cfg = PreTrainedConfig.from_pretrained(pretrained)
        if not isinstance(cfg, DiffusionConfig):
            raise TypeError(f"{pretrained}: a {type(cfg).__name__}, not a DiffusionConfig")
        cfg.device = "cpu"
        policy = DiffusionPolicy.from_pretrained(pretrained, config=cfg)
        pre, post = make_pre_post_processors(
            cfg, pretrained_path=pretrained,
            preprocessor_overrides={"device_processor": {"device": "cpu"}},
        )  # fmt: skip
    else:
        kwargs = {"input_features": PUSHT_INPUTS, "output_features": PUSHT_OUTPUTS, **PUSHT}
        cfg = DiffusionConfig(**{**kwargs, **config, "device": "cpu"})
        torch.manual_seed(0)
        policy = DiffusionPolicy(cfg)
        # other features than PushT's: no stats, so LeRobot (and the tick) leave them as they are
        stats = pusht_stats() if cfg.input_features == PUSHT_INPUTS else None
        pre, post = make_diffusion_pre_post_processors(cfg, dataset_stats=stats)
    policy.to("cpu").eval()
    policy.reset()
    return policy, pre, post


# --- the two networks: LeRobot's modules, wrapped -------------------------------------------


class Encoder(nn.Module):
    """Observation history -> global conditioning, by LeRobot's own
    ``DiffusionModel._prepare_global_conditioning`` (called on this module, which holds the
    same ``config`` and ``rgb_encoder``; the U-Net is not part of this network).

    Inputs: the normalised state ``(B, n_obs_steps, state_dim)``, then each camera's
    normalised history ``(B, n_obs_steps, H, W, 3)`` (channels last, as cameras hand frames
    over; moved first here), then the environment state if the policy has one.
    """

    def __init__(self, model: DiffusionModel) -> None:
        super().__init__()
        self.config = model.config
        self.cameras = list(model.config.image_features)
        self.env = model.config.env_state_feature is not None
        if len(self.cameras) + self.env > MAX_EXTRA:
            raise ValueError(f"this example's encoder takes up to {MAX_EXTRA} cameras/env inputs")
        if self.cameras:
            self.rgb_encoder = model.rgb_encoder

    # explicit optional inputs, not *args: torch.export binds one dynamic shape per parameter
    def forward(
        self,
        state: torch.Tensor,
        x1: torch.Tensor | None = None,
        x2: torch.Tensor | None = None,
        x3: torch.Tensor | None = None,
        x4: torch.Tensor | None = None,
    ) -> torch.Tensor:
        extra = [x for x in (x1, x2, x3, x4) if x is not None]
        batch = {OBS_STATE: state}
        if self.cameras:
            # (B, S, H, W, C) per camera -> (B, S, N, C, H, W): select_action stacks the cameras
            # on dim -4 of each observation, the queue stacks the steps on dim 1
            frames = [x.permute(0, 1, 4, 2, 3) for x in extra[: len(self.cameras)]]
            batch[OBS_IMAGES] = torch.stack(frames, dim=2)
        if self.env:
            batch[OBS_ENV_STATE] = extra[len(self.cameras)]
        return DiffusionModel._prepare_global_conditioning(self, batch)  # type: ignore[arg-type]


class Denoiser(nn.Module):
    """LeRobot's ``DiffusionConditionalUnet1d``: (noisy chunk, int64 timestep, global_cond) ->
    its prediction (noise for ``prediction_type="epsilon"``, the clean chunk for ``sample``)."""

    def __init__(self, model: DiffusionModel) -> None:
        super().__init__()
        self.unet = getattr(model.unet, "_orig_mod", model.unet)  # unwrap compile_model=True

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        return self.unet(sample, timestep, global_cond=global_cond)


# --- the declared tick, from LeRobot's config and processors ----------------------------------


def scheduler_config(cfg: DiffusionConfig) -> dict[str, Any]:
    """diffusers' scheduler config with exactly the options ``_make_noise_scheduler`` passes
    (the rest are diffusers' defaults there and here)."""
    kinds = {"DDPM": "DDPMScheduler", "DDIM": "DDIMScheduler"}
    return {
        "_class_name": kinds[cfg.noise_scheduler_type],
        "num_train_timesteps": int(cfg.num_train_timesteps),
        "beta_start": float(cfg.beta_start),
        "beta_end": float(cfg.beta_end),
        "beta_schedule": cfg.beta_schedule,
        "clip_sample": bool(cfg.clip_sample),
        "clip_sample_range": float(cfg.clip_sample_range),
        "prediction_type": cfg.prediction_type,
    }


def _step(pipeline: Any, kind: type) -> Any:
    steps = [s for s in pipeline.steps if isinstance(s, kind)]
    if len(steps) != 1:
        raise ValueError(f"expected one {kind.__name__} in LeRobot's pipeline, found {len(steps)}")
    if abs(float(steps[0].eps) - EPS) > 1e-12:
        raise ValueError(f"{kind.__name__}.eps is {steps[0].eps}; edgekit's blocks use {EPS}")
    return steps[0]


def stats_block(step: Any, key: str, ftype: FeatureType, scale: float = 1.0) -> dict | None:
    """The normalize/unnormalize parameters LeRobot's step applies to ``key`` (None: it leaves
    it as it is), its stats scaled by ``scale``. QUANTILES / QUANTILE10 are LeRobot's MIN_MAX
    formula over q01..q99 / q10..q90."""
    keys = step.normalize_observation_keys
    if ftype is not FeatureType.ACTION and keys is not None and key not in keys:
        return None
    mode = step.norm_map.get(ftype, NormalizationMode.IDENTITY)
    stats = {
        name.rsplit(".", 1)[1]: t.reshape(-1).double() * scale
        for name, t in step.state_dict().items()
        if name.rsplit(".", 1)[0] == key
    }
    pairs = {
        NormalizationMode.MEAN_STD: ("mean_std", "mean", "std", "mean", "std"),
        NormalizationMode.MIN_MAX: ("min_max", "min", "max", "min", "max"),
        NormalizationMode.QUANTILES: ("min_max", "q01", "q99", "min", "max"),
        NormalizationMode.QUANTILE10: ("min_max", "q10", "q90", "min", "max"),
    }
    if mode is NormalizationMode.IDENTITY or not stats:
        return None
    if mode not in pairs:
        raise ValueError(f"{key}: LeRobot normalization mode {mode} has no edgekit block")
    edge_mode, a, b, ka, kb = pairs[mode]
    if a not in stats or b not in stats:
        raise ValueError(f"{key}: LeRobot's {mode.value} needs {a} and {b} stats")
    return {"mode": edge_mode, ka: stats[a].tolist(), kb: stats[b].tolist()}


def tensor_name(key: str) -> str:
    """``observation.images.top`` -> ``images_top`` (tick and ONNX names)."""
    return re.sub(r"\W", "_", key.removeprefix("observation."))


def declare(policy: Any, preprocessor: Any, postprocessor: Any, hz: float = HZ) -> UserModel:
    """The UserModel of a LeRobot DiffusionPolicy and its processors."""
    cfg: DiffusionConfig = policy.config
    model: DiffusionModel = policy.diffusion
    norm = _step(preprocessor, NormalizerProcessorStep)
    unnorm = _step(postprocessor, UnnormalizerProcessorStep)
    steps, horizon = cfg.n_obs_steps, cfg.horizon
    act_dim = cfg.action_feature.shape[0]
    if cfg.n_action_steps > horizon - steps + 1:
        raise ValueError("LeRobot needs n_action_steps <= horizon - n_obs_steps + 1")

    observation: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    enc_specs: list[TensorSpec] = []
    enc_feeds: dict[str, str] = {}

    def feature(key: str, ft: PolicyFeature, image: bool) -> None:
        name = tensor_name(key)
        if image:  # the robot hands frames over as uint8 (H, W, 3); LeRobot's image is / 255
            c, h, w = ft.shape
            shape = [h, w, c]
            observation.append({"name": name, "shape": shape, "dtype": "uint8",
                                "sampler": "image"})  # fmt: skip
            identity = {"mode": "mean_std", "mean": 0.0, "std": 255.0}
            params = stats_block(norm, key, ft.type, 255.0) or identity
        else:
            shape = list(ft.shape)
            observation.append({"name": name, "shape": shape})
            params = stats_block(norm, key, ft.type)
        src = name
        if params is not None:
            blocks.append({"block": "normalize", "input": name, "output": f"{name}_n", **params})
            src = f"{name}_n"
        blocks.append({"block": "history", "input": src, "length": steps,
                       "output": f"{name}_hist"})  # fmt: skip
        enc_specs.append(TensorSpec(name, ("batch", steps, *shape)))
        enc_feeds[name] = f"{name}_hist"

    # the encoder's inputs in its forward's order: state, cameras (config order), env state
    feature(OBS_STATE, cfg.robot_state_feature, image=False)
    for key, ft in cfg.image_features.items():
        feature(key, ft, image=True)
    if cfg.env_state_feature is not None:
        feature(OBS_ENV_STATE, cfg.env_state_feature, image=False)

    encoder, denoiser = Encoder(model), Denoiser(model)
    with torch.no_grad():
        zeros = [torch.zeros((1, *s.shape[1:])) for s in enc_specs]
        cond_dim = int(encoder.eval()(*zeros).shape[-1])
    scheduler = scheduler_config(cfg)
    live = model.noise_scheduler
    if type(live).__name__ != scheduler["_class_name"] or any(
        live.config[k] != v for k, v in scheduler.items() if k != "_class_name"
    ):
        raise ValueError(f"the declared scheduler {scheduler} is not the policy's {live.config}")

    blocks.append({"block": "call", "network": "encoder", "inputs": enc_feeds,
                   "outputs": {"output": "global_cond"}})  # fmt: skip
    blocks.append({
        "block": "denoise", "network": "denoiser", "shape": [horizon, act_dim],
        "sample": "sample", "timestep": "timestep", "inputs": {"global_cond": "global_cond"},
        "scheduler": scheduler, "num_inference_steps": int(model.num_inference_steps),
        "result": "chunk",
    })  # fmt: skip
    chunk = "chunk"
    params = stats_block(unnorm, ACTION, FeatureType.ACTION)
    if params is not None:
        blocks.append({"block": "unnormalize", "input": "chunk", "output": "chunk_units",
                       **params})  # fmt: skip
        chunk = "chunk_units"
    # generate_actions: start = n_obs_steps - 1; end = start + n_action_steps
    blocks.append({"block": "chunk", "input": chunk, "execute": int(cfg.n_action_steps),
                   "start": steps - 1, "output": "action"})  # fmt: skip

    t_max = int(cfg.num_train_timesteps)
    return UserModel(
        networks={"encoder": encoder, "denoiser": denoiser},
        inputs={
            "encoder": enc_specs,
            "denoiser": [
                TensorSpec("sample", ("batch", horizon, act_dim)),
                TensorSpec("timestep", ("batch",), "int64", "int", 0, t_max),
                TensorSpec("global_cond", ("batch", cond_dim)),
            ],
        },
        tick={"observation": observation, "blocks": blocks, "outputs": ["action"]},
        hz=hz,
    )


def make_policy(pretrained: str | None = None, **config: Any) -> UserModel:
    """LeRobot's DiffusionPolicy (fresh with PushT's configuration and ``config`` overrides, or
    ``from_pretrained(pretrained)``) with its declared tick."""
    return declare(*lerobot_policy(pretrained, **config))


def make_pusht() -> UserModel:
    """LeRobot's trained PushT policy from the Hugging Face hub (``lerobot/diffusion_pusht``)."""
    return make_policy("lerobot/diffusion_pusht")
