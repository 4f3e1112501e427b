"""``world-model``: its control-loop program(s).

numpy only: an exported artifact runs them without torch.
"""

from __future__ import annotations

import numpy as np

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.spec import TensorSpec


class _RSSMProgram(LoopProgram):
    """Shared state and observe step: preprocess -> encoder -> posterior."""

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        s = self.params["image"]
        return (TensorSpec("image", (s, s, 3), "uint8", "image"),)

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        # DreamerV3 starts from an all-zero carry (stoch is not one-hot yet)
        self.deter = np.zeros((1, p["deter"]), np.float32)
        self.stoch = np.zeros((1, p["stoch"] * p["classes"]), np.float32)
        self.prev_action = np.zeros((1, p["action_dim"]), np.float32)

    def noise(self, batch: int) -> np.ndarray:
        """Uniform noise for the Gumbel-max sample, kept inside (0, 1) so log(-log u) is finite."""
        p = self.params
        u = self.rng.random((batch, p["stoch"], p["classes"]), dtype=np.float32)
        return np.clip(u, 1e-6, 1.0 - 1e-6, out=u)

    def observe(self, ctx: TickContext, obs: Arrays) -> None:
        with ctx.host("preprocess"):
            img = obs["image"].astype(np.float32) * (1.0 / 255.0) - 0.5
            img = np.ascontiguousarray(img.transpose(2, 0, 1)[None])
        embed = ctx.call("encoder", {"image": img})["embed"]
        with ctx.host("sample-noise"):
            noise = self.noise(1)
        feeds = {
            "deter": self.deter,
            "stoch": self.stoch,
            "action": self.prev_action,
            "embed": embed,
            "noise": noise,
        }
        out = ctx.call("posterior", feeds)
        self.deter, self.stoch = out["deter_next"], out["stoch_next"]


@register_program
class RSSMActProgram(_RSSMProgram):
    """Observe the image, update the latent state, act with the deterministic actor."""

    name = "rssm-act"
    host_stages = ("preprocess", "sample-noise")

    def calls_per_tick(self) -> dict[str, int]:
        return {"encoder": 1, "posterior": 1, "actor": 1}

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        self.observe(ctx, obs)
        action = ctx.call("actor", {"deter": self.deter, "stoch": self.stoch})["action"]
        self.prev_action = action
        return {"action": action[0]}


@register_program
class RSSMPlanProgram(_RSSMProgram):
    """Observe, then CEM / random shooting over action sequences rolled out in imagination."""

    name = "rssm-plan"
    host_stages = ("preprocess", "sample-noise", "sample-actions", "returns", "select")

    def calls_per_tick(self) -> dict[str, int]:
        p = self.params
        return {"encoder": 1, "posterior": 1, "imagine": p["horizon"] * p["iterations"]}

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        self.plan_mean = np.zeros((p["horizon"], p["action_dim"]), np.float32)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        p = self.params
        n, h, a, k = p["candidates"], p["horizon"], p["action_dim"], p["elites"]
        self.observe(ctx, obs)
        mean = self.plan_mean
        std = np.full_like(mean, p["plan_std"])
        best_seq = mean
        best_ret = np.float32(0.0)
        for _ in range(p["iterations"]):
            with ctx.host("sample-actions"):
                eps = self.rng.standard_normal((n, h, a), dtype=np.float32)
                seqs = np.clip(mean + std * eps, -1.0, 1.0).astype(np.float32)
                deter = np.repeat(self.deter, n, 0)
                stoch = np.repeat(self.stoch, n, 0)
                ret = np.zeros(n, np.float32)
                weight = np.ones(n, np.float32)
            for t in range(h):
                with ctx.host("sample-noise"):
                    noise = self.noise(n)
                feeds = {
                    "deter": deter,
                    "stoch": stoch,
                    "action": np.ascontiguousarray(seqs[:, t]),
                    "noise": noise,
                }
                out = ctx.call("imagine", feeds)
                deter, stoch = out["deter_next"], out["stoch_next"]
                with ctx.host("returns"):
                    # discounted return, cut off where the model predicts the episode ends
                    ret += weight * out["reward"]
                    weight *= p["gamma"] * out["cont"]
            with ctx.host("select"):
                elite = np.argsort(-ret, kind="stable")[:k]
                mean = seqs[elite].mean(0)
                std = np.maximum(seqs[elite].std(0), 0.05).astype(np.float32)
                best_seq, best_ret = seqs[elite[0]], ret[elite[0]]
        with ctx.host("select"):
            # warm start: next tick's mean is this plan shifted one step
            self.plan_mean = np.concatenate([mean[1:], np.zeros_like(mean[:1])]).astype(np.float32)
            action = best_seq[0].astype(np.float32)
            self.prev_action = action[None]
        return {"action": action, "plan_return": np.asarray([best_ret], np.float32)}
