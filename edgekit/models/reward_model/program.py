"""``reward-model``: its control-loop program(s).

numpy only: an exported artifact runs them without torch.
"""

from __future__ import annotations

import numpy as np

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.models.hostops import ImageNormalizer
from edgekit.spec import TensorSpec


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
