"""``vla``: its control-loop program(s).

numpy only: an exported artifact runs them without torch.
"""

from __future__ import annotations

import numpy as np

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.models.hostops import ImageNormalizer
from edgekit.spec import TensorSpec


@register_program
class VLAChunkProgram(LoopProgram):
    """Normalize images and proprio -> policy once -> unnormalize and clip the action chunk.

    One tick is one forward pass. The robot executes the returned chunk over the following
    ticks (or blends overlapping chunks with ACT's temporal ensembling), so a real loop calls
    the policy only every few ticks; benching every tick as a forward gives the worst-case tick.
    The instruction arrives already tokenized: tokenizing happens once per task, not per tick.
    """

    name = "vla-chunk"
    host_stages = ("preprocess", "postprocess")

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        p = self.params
        size = p["image_size"]
        return (
            TensorSpec("images", (p["cameras"], size, size, 3), "uint8", "image"),
            TensorSpec("instruction", (p["instr_len"],), "int64", "int", 0, p["vocab"]),
            TensorSpec("proprio", (p["proprio_dim"],)),
        )

    def calls_per_tick(self) -> dict[str, int]:
        return {"policy": 1}

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        f32 = np.float32
        self.normalize = ImageNormalizer()
        self.proprio_mean = np.asarray(p["proprio_mean"], f32)
        self.proprio_std = np.asarray(p["proprio_std"], f32)
        self.action_mean = np.asarray(p["action_mean"], f32)
        self.action_std = np.asarray(p["action_std"], f32)
        self.action_low = np.asarray(p["action_low"], f32)
        self.action_high = np.asarray(p["action_high"], f32)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        with ctx.host("preprocess"):
            images = self.normalize(obs["images"])[None]  # (1, cams, 3, H, W)
            proprio = (obs["proprio"].astype(np.float32) - self.proprio_mean) / self.proprio_std
            feeds: Arrays = {
                "images": images,
                "instruction": obs["instruction"].astype(np.int64)[None],
                "proprio": proprio[None].astype(np.float32),
            }
        chunk = ctx.call("policy", feeds)["action_chunk"][0]
        with ctx.host("postprocess"):
            chunk = chunk * self.action_std + self.action_mean
            chunk = np.clip(chunk, self.action_low, self.action_high).astype(np.float32)
        return {"action_chunk": chunk, "action": chunk[0].copy()}
