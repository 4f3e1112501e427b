"""``vla``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VLAConfig:
    cameras: int = 2
    # ACT trains on 480x640; 224x224 (7x7 tokens per camera) is the usual edge resize and keeps
    # the encoder at ~115 tokens
    image_size: int = 224
    proprio_dim: int = 14
    action_dim: int = 14
    # LeRobot ACT defaults to 100; 50 is SmolVLA's chunk and the one ALOHA runs at 50 Hz (1 s)
    chunk: int = 50
    # a 32000-token LLM vocabulary would be a 16M-parameter embedding, about half the policy;
    # an edge VLA with a fixed task set needs far fewer tokens
    vocab: int = 1024
    instr_len: int = 16
    width: int = 512
    heads: int = 8
    ffn: int = 3200
    enc_layers: int = 4
    dec_layers: int = 1  # ACT builds 7 decoder layers but only the first one is used
    backbone_widths: tuple[int, ...] = (64, 128, 256, 512)  # ResNet-18
    backbone_blocks: tuple[int, ...] = (2, 2, 2, 2)
    action_limit: float = 3.14159  # joint-angle limits (rad), clipped on the host
    hz: float = 50.0  # ACT / ALOHA control rate
