"""``vla-flow``: the zoo entry: presets, model spec (io + loop programs), registration."""

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
from edgekit.models.vla_flow.config import VLAFlowConfig
from edgekit.models.vla_flow.modeling import VLAFlow
from edgekit.models.vla_flow.program import VLAFlowProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec

TINY = VLAFlowConfig(
    image_size=32,
    patch=8,
    vision_width=32,
    vision_heads=2,
    vision_ffn=64,
    vision_layers=1,
    vocab=64,
    instr_len=4,
    width=32,
    heads=2,
    kv_heads=1,
    head_dim=16,
    ffn=64,
    layers=2,
    expert_width=24,
    expert_ffn=48,
)

# the closed-loop teacher of `edgekit eval --env reacher` (state and camera conditioned): one
# 96 x 96 MuJoCo camera frame averaged down to 32 x 32 (8 x 8 patches of 4, shuffled to 16
# tokens), a fixed 2-token instruction, the 10-D Reacher observation as the proprio token;
# chunks of 16 joint-position commands (relative to the joints at the planning tick, / pi;
# the arm's PD tracks them), 8 executed per plan, 10 Euler flow steps
REACHER = VLAFlowConfig(
    cameras=1,
    image_size=32,
    patch=4,
    vision_width=32,
    vision_heads=2,
    vision_ffn=64,
    vision_layers=1,
    vocab=8,
    instr_len=2,
    proprio_dim=10,
    action_dim=2,
    chunk=16,
    width=64,
    heads=4,
    kv_heads=2,
    head_dim=16,
    ffn=128,
    layers=2,
    expert_width=64,
    expert_ffn=128,
    n_action_steps=8,
    action_limit=1.0,  # commands in [-1, 1] (units of pi)
    # cos/sin of the joints, target x/y (+-0.2 m), joint velocities (~+-10 rad/s),
    # fingertip - target x/y: the diffusion policy's scale, as standard deviations
    proprio_std=(1, 1, 1, 1, 0.2, 0.2, 10, 10, 0.2, 0.2),
    action_std=(0.25, 0.25),
    host_queue=False,
)


def flow_spec(cfg: VLAFlowConfig, **overrides: object) -> ProgramSpec:
    """The vla-flow program for ``cfg`` (``overrides``: steps, recompute_prefix...)."""
    # placeholder dataset statistics: identity normalization until real ones are loaded
    zeros_p, ones_p = [0.0] * cfg.proprio_dim, [1.0] * cfg.proprio_dim
    zeros_a, ones_a = [0.0] * cfg.action_dim, [1.0] * cfg.action_dim
    if cfg.proprio_std is not None:
        ones_p = [float(v) for v in cfg.proprio_std]
    if cfg.action_std is not None:
        ones_a = [float(v) for v in cfg.action_std]
    params = {
        "steps": cfg.steps,
        "recompute_prefix": False,
        "n_action_steps": cfg.n_action_steps,
        "chunk": cfg.chunk,
        "action_dim": cfg.action_dim,
        "cameras": cfg.cameras,
        "image_size": cfg.image_size,
        "instr_len": cfg.instr_len,
        "vocab": cfg.vocab,
        "proprio_dim": cfg.proprio_dim,
        "proprio_mean": zeros_p,
        "proprio_std": ones_p,
        "action_mean": zeros_a,
        "action_std": ones_a,
        "action_low": [-cfg.action_limit] * cfg.action_dim,
        "action_high": [cfg.action_limit] * cfg.action_dim,
    }
    if not cfg.host_queue:  # the key only where it is off: the other presets' specs unchanged
        params["host_queue"] = False
    return ProgramSpec(VLAFlowProgram.name, {**params, **overrides})


@register
class VLAFlowEntry(ZooEntry):
    kind = "vla-flow"
    category = "VLA (flow matching)"
    summary = (
        "pi0 / SmolVLA: ViT prefix -> KV cache once per plan; action expert x10 Euler steps, "
        "50 x 14 chunk"
    )
    presets: ClassVar[dict[str, VLAFlowConfig]] = {
        "tiny": TINY,
        "reacher": REACHER,
        "default": VLAFlowConfig(),
    }

    def make(self, cfg: VLAFlowConfig) -> StackModel:
        return VLAFlow(cfg)

    def scaled(self, cfg: VLAFlowConfig, width: float, depth: float) -> VLAFlowConfig:
        """Widths (ViT, backbone, expert, their MLPs) scale with width; the ViT's layers with
        depth. Kept: the KV cache (backbone/expert ``layers``, ``heads``, ``kv_heads``,
        ``head_dim``, and the prefix length: cameras, image and patch sizes, shuffle,
        instruction length), the vocabulary and the observation/action/chunk sizes."""
        check_factors(width, depth)
        return replace(
            cfg,
            vision_width=scale_width(cfg.vision_width, width, math.lcm(cfg.vision_heads, 8)),
            vision_ffn=scale_width(cfg.vision_ffn, width),
            vision_layers=scale_depth(cfg.vision_layers, depth),
            width=scale_width(cfg.width, width),
            ffn=scale_width(cfg.ffn, width),
            expert_width=scale_width(cfg.expert_width, width),
            expert_ffn=scale_width(cfg.expert_ffn, width),
        )

    def spec(self, cfg: VLAFlowConfig, preset: str) -> ModelSpec:
        size, kv = cfg.image_size, ("batch", *cfg.kv_shape)
        chunk = ("batch", cfg.chunk, cfg.action_dim)
        prefix = NetworkSpec(
            "prefix",
            inputs=(
                TensorSpec(
                    "images", ("batch", cfg.cameras, 3, size, size), "float32", "uniform", -1.0, 1.0
                ),
                TensorSpec("instruction", ("batch", cfg.instr_len), "int64", "int", 0, cfg.vocab),
                TensorSpec("proprio", ("batch", cfg.proprio_dim)),
            ),
            outputs=(TensorSpec("prefix_keys", kv), TensorSpec("prefix_values", kv)),
        )
        expert = NetworkSpec(
            "expert",
            inputs=(
                TensorSpec("x_t", chunk),
                TensorSpec("t", ("batch",), "float32", "uniform", 0.0, 1.0),
                TensorSpec("prefix_keys", kv),
                TensorSpec("prefix_values", kv),
            ),
            outputs=(TensorSpec("velocity", chunk),),
        )
        program = flow_spec(cfg)
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=(prefix, expert),
            program=program,
            programs={
                "flow": program,
                # a plan every tick: the worst-case tick, and calibration data at every tick
                "replan": flow_spec(cfg, n_action_steps=1),
            },
            hz=cfg.hz,
            config=config_dict(cfg),
        )
