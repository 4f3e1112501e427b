"""``reward-model``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass


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
    # (Diffusion Policy, Chi et al. 2023)
    hz: float = 10.0
