"""``vla-flow``: its control-loop program, and the check that the expert reads the prefix's
KV cache.

numpy only: an exported artifact runs it without torch.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from edgekit.errors import BadInputError
from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.loop.schedulers import make_scheduler
from edgekit.models.hostops import ImageNormalizer
from edgekit.spec import NetworkSpec, TensorSpec

KV = ("prefix_keys", "prefix_values")  # prefix outputs = expert inputs, [B, L, Hkv, P, D]
MAX_STEPS = 1000  # the flow-euler scheduler's num_train_timesteps: its finest grid


def flow_times(steps: int) -> list[float]:
    """pi0's Euler grid: t = 1 (noise), 1 - 1/K, ..., 1/K; the last step lands on t = 0."""
    return [1.0 - i / steps for i in range(steps)]


def check_kv(networks: dict[str, NetworkSpec], where: str) -> None:
    """The expert must read exactly the cache the prefix writes: same names, shapes, dtypes.

    Raises :class:`BadInputError` (one line) otherwise: an expert exported for another
    prefix length, layer count, kv-head count or head size cannot attend to this cache.
    """
    for net in ("prefix", "expert"):
        if net not in networks:
            raise BadInputError(
                f"{where}: the vla-flow tick needs networks 'prefix' and 'expert' "
                f"(networks: {', '.join(networks) or 'none'})"
            )
    outs = {t.name: t for t in networks["prefix"].outputs}
    ins = {t.name: t for t in networks["expert"].inputs}
    for name in KV:
        if name not in outs or name not in ins:
            side = "prefix output" if name not in outs else "expert input"
            raise BadInputError(f"{where}: no {side} {name!r}: the KV cache is not wired")
        a, b = outs[name], ins[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise BadInputError(
                f"{where}: KV cache mismatch: expert input {name!r} is {list(b.shape)} {b.dtype} "
                f"but the prefix writes {list(a.shape)} {a.dtype} ([batch, layers, kv_heads, "
                "prefix_len, head_dim]); export the expert and prefix from the same model"
            )


@register_program
class VLAFlowProgram(LoopProgram):
    """Plan: normalize -> prefix once (its KV cache) -> K expert calls, Euler steps from noise
    -> unnormalize and clip the chunk -> queue ``n_action_steps`` actions; every tick pops one.

    Flow convention (pi0, and LeRobot's ``pi0`` / ``smolvla``): ``x_t = t * noise + (1 - t) *
    actions``; the expert predicts ``v = noise - actions``; sampling starts at t = 1 from
    Gaussian noise and takes K Euler steps ``x <- x + dt * v`` with ``dt = -1/K`` down to t = 0.
    The update is the flow-matching Euler scheduler of :mod:`edgekit.loop.schedulers` on the
    explicit sigma grid ``1, 1 - 1/K, ..., 1/K`` (shift 1); the expert's ``t`` is that sigma.

    ``steps``: K. ``recompute_prefix``: call the prefix again before every expert call instead
    of reusing its cache (the baseline the cache is measured against; same actions).
    ``n_action_steps``: actions executed per chunk before the next plan. ``host_queue``
    (default true): false plans at every tick and returns the ``n_action_steps`` actions as
    ``actions`` for the executor to run (the ``reacher`` teacher in ``edgekit eval``). The
    instruction arrives tokenized (once per task, not per tick).
    """

    name = "vla-flow"
    host_stages = ("preprocess", "scheduler", "postprocess", "queue")

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        p = self.params
        k, chunk, n = p["steps"], p["chunk"], p["n_action_steps"]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_STEPS:
            raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], got {k!r}")
        if not isinstance(p["recompute_prefix"], bool):
            raise ValueError(
                f"recompute_prefix must be true or false, got {p['recompute_prefix']!r}"
            )
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= chunk:
            raise ValueError(f"n_action_steps must be an integer in [1, {chunk}], got {n!r}")
        self.steps = k
        self.scheduler = make_scheduler({"type": "flow-euler"}, k, sigmas=flow_times(k))
        # the expert's t: the scheduler's sigmas (float32, unshifted), as pi0 feeds its time
        self.times = [np.full((1,), s, np.float32) for s in flow_times(k)]

    @classmethod
    def check_networks(
        cls, params: dict[str, Any], networks: dict[str, NetworkSpec], where: str
    ) -> None:
        check_kv(networks, where)

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        p = self.params
        size = p["image_size"]
        return (
            TensorSpec("images", (p["cameras"], size, size, 3), "uint8", "image"),
            TensorSpec("instruction", (p["instr_len"],), "int64", "int", 0, p["vocab"]),
            TensorSpec("proprio", (p["proprio_dim"],)),
        )

    def calls_per_tick(self) -> dict[str, int]:
        """Calls on a planning tick."""
        return {
            "prefix": self.steps if self.params["recompute_prefix"] else 1,
            "expert": self.steps,
        }

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        p = self.params
        f32 = np.float32
        self.normalize = ImageNormalizer((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # SigLIP: [-1, 1]
        self.proprio_mean = np.asarray(p["proprio_mean"], f32)
        self.proprio_std = np.asarray(p["proprio_std"], f32)
        self.action_mean = np.asarray(p["action_mean"], f32)
        self.action_std = np.asarray(p["action_std"], f32)
        self.action_low = np.asarray(p["action_low"], f32)
        self.action_high = np.asarray(p["action_high"], f32)
        self.queue: deque[np.ndarray] = deque()
        self.chunk = np.zeros((p["chunk"], p["action_dim"]), f32)

    def prefix_feeds(self, obs: Arrays) -> Arrays:
        """The prefix's inputs for one observation (batch of 1), normalized (after reset())."""
        proprio = (obs["proprio"].astype(np.float32) - self.proprio_mean) / self.proprio_std
        return {
            "images": self.normalize(obs["images"])[None],  # (1, cams, 3, H, W)
            "instruction": obs["instruction"].astype(np.int64)[None],
            "proprio": proprio[None].astype(np.float32),
        }

    def plan(self, ctx: TickContext, obs: Arrays) -> np.ndarray:
        """One chunk: the prefix's KV cache, then K Euler steps of the expert on it."""
        p = self.params
        with ctx.host("preprocess"):
            feeds = self.prefix_feeds(obs)
        recompute = p["recompute_prefix"]
        cache = {} if recompute else ctx.call("prefix", feeds)
        sched = self.scheduler
        with ctx.host("scheduler"):
            sched.begin()
            x = self.rng.standard_normal((1, p["chunk"], p["action_dim"])).astype(np.float32)
        for i, t in enumerate(self.times):
            if recompute:
                cache = ctx.call("prefix", feeds)
            step = {"x_t": x, "t": t, **{n: cache[n] for n in KV}}
            v = ctx.call("expert", step)["velocity"]
            with ctx.host("scheduler"):
                x = sched.step(v, i, x, self.rng)
        with ctx.host("postprocess"):
            chunk = x[0] * self.action_std + self.action_mean
            return np.clip(chunk, self.action_low, self.action_high).astype(np.float32)

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        if not self.params.get("host_queue", True):  # the executor runs the n_action_steps
            self.chunk = self.plan(ctx, obs)
            n = self.params["n_action_steps"]
            return {"action_chunk": self.chunk, "actions": self.chunk[:n], "action": self.chunk[0]}
        if not self.queue:
            self.chunk = self.plan(ctx, obs)
            with ctx.host("queue"):
                self.queue.extend(self.chunk[: self.params["n_action_steps"]])
        with ctx.host("queue"):
            action = self.queue.popleft().copy()
        return {"action_chunk": self.chunk, "action": action}
