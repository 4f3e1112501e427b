"""``vla-flow``: the configuration (sizes) of the kind's presets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VLAFlowConfig:
    """Sizes of the prefix (vision encoder + backbone, the "VLM") and of the action expert.

    The KV cache the prefix hands the expert is ``[batch, layers, kv_heads, prefix_len,
    head_dim]`` (keys and values alike): ``layers``, ``kv_heads`` and ``head_dim`` belong to
    both networks, so the expert's widths can differ from the backbone's (pi0: Gemma 2B and a
    300M expert; SmolVLA: an expert 0.75x the VLM's width) while its attention reads the same
    cache.
    """

    cameras: int = 2
    # 224 / 16 = 14 x 14 patches per camera, pixel-shuffled 2 x 2 into 7 x 7 = 49 tokens
    # (SmolVLM, SmolVLA's VLM, pixel-shuffles its SigLIP grid the same way, to 64 per frame)
    image_size: int = 224
    patch: int = 16
    shuffle: int = 2
    vision_width: int = 384
    vision_heads: int = 6
    vision_ffn: int = 1536
    vision_layers: int = 4
    # SmolVLA pads the instruction to 48 tokens; its 49k-token vocabulary would be a 25M
    # embedding at this width, while an edge robot's fixed task set needs far fewer tokens
    vocab: int = 1024
    instr_len: int = 48
    proprio_dim: int = 14
    action_dim: int = 14
    chunk: int = 50  # pi0 and SmolVLA: 50 actions per chunk
    # the backbone (the VLM's language model): its layers each leave one K/V pair in the cache
    width: int = 512
    heads: int = 8
    kv_heads: int = 2  # grouped-query attention (SmolVLA 15/5 heads; pi0's Gemma: 8/1)
    head_dim: int = 64
    ffn: int = 1536  # gated SiLU MLP (SmolLM2 / Llama)
    layers: int = 6
    # the action expert: one layer per backbone layer, attending to that layer's cached K/V
    expert_width: int = 384  # 0.75 x width, SmolVLA's expert_width_multiplier
    expert_ffn: int = 1024
    steps: int = 10  # Euler flow-matching steps (pi0 and SmolVLA: 10)
    n_action_steps: int = 50  # actions executed per chunk before replanning (LeRobot default)
    action_limit: float = 3.14159  # joint-angle limits (rad), clipped on the host
    hz: float = 50.0  # pi0's control rate (ALOHA, 50 actions = 1 s)
    # dataset statistics of the host's normalization (None: identity, placeholders until real
    # ones are loaded); a trained preset carries its own
    proprio_std: tuple[float, ...] | None = None
    action_std: tuple[float, ...] | None = None
    # True: the program keeps the chunk queue and plans when it runs dry (LeRobot's
    # select_action: one action per tick). False: it plans at every tick and hands the
    # executor its n_action_steps actions at once (``actions``), as the diffusion policy
    # does: the closed-loop binding of a joint-position teacher (relative to the joints at
    # the planning tick) needs to know which tick planned
    host_queue: bool = True

    def __post_init__(self) -> None:
        if self.image_size % self.patch:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch {self.patch}"
            )
        if self.grid % self.shuffle:
            raise ValueError(f"the {self.grid} x {self.grid} patch grid does not divide by shuffle")
        if self.heads % self.kv_heads:
            raise ValueError(f"{self.heads} heads do not group over {self.kv_heads} kv heads")
        if self.vision_width % self.vision_heads:
            raise ValueError(f"vision_width {self.vision_width} is not divisible by its heads")
        if not 1 <= self.n_action_steps <= self.chunk:
            raise ValueError(f"n_action_steps {self.n_action_steps} not in [1, {self.chunk}]")

    @property
    def grid(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch

    @property
    def image_tokens(self) -> int:
        """Tokens per camera after the pixel shuffle."""
        return (self.grid // self.shuffle) ** 2

    @property
    def prefix_len(self) -> int:
        """[image tokens of every camera, instruction tokens, one proprio token]."""
        return self.cameras * self.image_tokens + self.instr_len + 1

    @property
    def kv_shape(self) -> tuple[int, int, int, int]:
        """The KV cache per batch item: (layers, kv_heads, prefix_len, head_dim)."""
        return (self.layers, self.kv_heads, self.prefix_len, self.head_dim)
