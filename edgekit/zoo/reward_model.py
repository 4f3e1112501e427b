"""``reward-model``: scores N candidate clips per tick and picks the best (online reranking)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from torch import nn

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.nets.reward_model import ClipRewardModel
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec
from edgekit.zoo.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_depth,
    scale_width,
)
from edgekit.zoo.hostops import ImageNormalizer

# ImageNet statistics: the ResNet encoders of LeRobot's reward classifier are ImageNet-pretrained


@dataclass(frozen=True)
class RewardModelConfig:
    frames: int = 4
    cameras: int = 2
    image_size: int = 96
    # a full LLM vocabulary would dominate the parameter count; see zoo/vla.py
    vocab: int = 1024
    instr_len: int = 16
    width: int = 256  # LeRobot reward classifier hidden_dim
    heads: int = 4
    ffn: int = 1024
    depth: int = 4
    # ResNet-10 (one basic block per stage), the encoder of LeRobot's reward classifier
    backbone_widths: tuple[int, ...] = (64, 128, 256, 512)
    backbone_blocks: tuple[int, ...] = (1, 1, 1, 1)
    candidates: int = 8  # N clips scored per tick, one batched call
    temperature: float = 1.0  # softmax temperature of the candidate weights
    # reranking runs once per replanned action chunk, and chunked policies replan at ~10 Hz
    # (diffusion policy, see STACK.md)
    hz: float = 10.0


class RewardModel(StackModel):
    def __init__(self, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.reward = ClipRewardModel(
            frames=cfg.frames,
            cameras=cfg.cameras,
            vocab=cfg.vocab,
            instr_len=cfg.instr_len,
            width=cfg.width,
            heads=cfg.heads,
            ffn=cfg.ffn,
            depth=cfg.depth,
            backbone_widths=cfg.backbone_widths,
            backbone_blocks=cfg.backbone_blocks,
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"reward": self.reward}


@register_program
class RewardRerankProgram(LoopProgram):
    """Normalize N candidate clips -> reward once with batch N -> argmax and softmax weights.

    The candidates are whatever the stack proposes each tick (imagined futures of a world
    model, recorded rollouts of candidate action chunks); the reward model only ranks them.
    Outputs: ``scores`` (raw rewards), ``weights`` (their softmax, for weighted blending) and
    ``best`` (index of the highest score, an int64 scalar array).
    """

    name = "reward-rerank"
    host_stages = ("preprocess", "rerank")

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        p = self.params
        size = p["image_size"]
        clip = (p["candidates"], p["frames"], p["cameras"], size, size, 3)
        return (
            TensorSpec("candidate_frames", clip, "uint8", "image"),
            TensorSpec("instruction", (p["instr_len"],), "int64", "int", 0, p["vocab"]),
        )

    def calls_per_tick(self) -> dict[str, int]:
        return {"reward": 1}

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        self.normalize = ImageNormalizer()
        self.inv_temp = np.float32(1.0 / self.params["temperature"])

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        with ctx.host("preprocess"):
            clips = obs["candidate_frames"]
            n = clips.shape[0]
            frames = self.normalize(clips)  # (N, T, cams, 3, H, W)
            instruction = np.repeat(obs["instruction"].astype(np.int64)[None], n, axis=0)
        scores = ctx.call("reward", {"frames": frames, "instruction": instruction})["reward"]
        with ctx.host("rerank"):
            scores = scores.astype(np.float32)
            z = (scores - scores.max()) * self.inv_temp  # shift for a stable softmax
            weights = np.exp(z) / np.exp(z).sum()
            best = np.asarray(np.argmax(scores), dtype=np.int64)
        return {"scores": scores, "weights": weights.astype(np.float32), "best": best}


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
