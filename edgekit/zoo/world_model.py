"""``world-model``: DreamerV3 RSSM; acting at 50 Hz or CEM planning in imagination at 10 Hz."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
from torch import nn

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.nets.world_model import ActorNet, EncoderNet, ImagineNet, PosteriorNet, WorldModel
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec
from edgekit.zoo.base import StackModel, ZooEntry, check_factors, config_dict, register, scale_width


@dataclass(frozen=True)
class WorldModelConfig:
    deter: int = 2048
    hidden: int = 256
    stoch: int = 32
    classes: int = 16
    blocks: int = 8
    depth: int = 16  # CNN channels depth * (1, 2, 4, 8)
    units: int = 256  # actor / reward / continue head width
    action_dim: int = 12  # a 12-DoF quadruped's joint targets
    image: int = 64
    hz: float = 50.0
    # planning (rssm-plan)
    plan_hz: float = 10.0
    candidates: int = 512
    horizon: int = 15
    iterations: int = 1
    elites: int = 64
    gamma: float = 0.99
    plan_std: float = 0.5

    @property
    def embed_dim(self) -> int:
        return self.depth * 8 * (self.image // 16) ** 2


class DreamerRSSM(StackModel):
    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.wm = WorldModel(
            cfg.deter,
            cfg.hidden,
            cfg.stoch,
            cfg.classes,
            cfg.blocks,
            cfg.depth,
            cfg.units,
            cfg.action_dim,
        )
        self.nets = nn.ModuleDict(
            {
                "encoder": EncoderNet(self.wm),
                "posterior": PosteriorNet(self.wm),
                "imagine": ImagineNet(self.wm),
                "actor": ActorNet(self.wm),
            }
        )

    def networks(self) -> dict[str, nn.Module]:
        return dict(self.nets.items())


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


@register
class WorldModelEntry(ZooEntry):
    kind = "world-model"
    category = "world model"
    summary = (
        "DreamerV3 RSSM size12m (block GRU deter 2048, 32x16 categorical, CNN 64x64); "
        "act = encode + posterior + actor, plan = CEM over 512 x 15 imagined steps"
    )
    presets: ClassVar[dict[str, Any]] = {
        "tiny": WorldModelConfig(
            deter=32,
            hidden=16,
            stoch=4,
            classes=4,
            blocks=2,
            depth=4,
            units=16,
            candidates=16,
            horizon=3,
            elites=4,
        ),
        "default": WorldModelConfig(),
    }

    def make(self, cfg: WorldModelConfig) -> StackModel:
        return DreamerRSSM(cfg)

    def scaled(self, cfg: WorldModelConfig, width: float, depth: float) -> WorldModelConfig:
        """Only the RSSM's ``hidden`` and the heads' ``units`` scale. The recurrent state
        (``deter``, ``stoch`` x ``classes``) and the encoder's ``embed`` (its size is
        ``depth * 8 * (image / 16) ** 2``, so the CNN ``depth`` stays) cross between networks,
        ``blocks`` must divide ``deter``, and the head and prior/posterior layer counts are
        fixed by the modelling code, so ``depth`` changes nothing here."""
        check_factors(width, depth)
        return replace(
            cfg, hidden=scale_width(cfg.hidden, width), units=scale_width(cfg.units, width)
        )

    def spec(self, cfg: WorldModelConfig, preset: str) -> ModelSpec:
        b, d, sc, a = "batch", cfg.deter, cfg.stoch * cfg.classes, cfg.action_dim
        deter, stoch = TensorSpec("deter", (b, d)), TensorSpec("stoch", (b, sc))
        action = TensorSpec("action", (b, a), "float32", "uniform", -1.0, 1.0)
        noise = TensorSpec(
            "noise", (b, cfg.stoch, cfg.classes), "float32", "uniform", 1e-6, 1 - 1e-6
        )
        nexts = (TensorSpec("deter_next", (b, d)), TensorSpec("stoch_next", (b, sc)))
        networks = (
            NetworkSpec(
                "encoder",
                inputs=(
                    TensorSpec(
                        "image", (b, 3, cfg.image, cfg.image), "float32", "uniform", -0.5, 0.5
                    ),
                ),
                outputs=(TensorSpec("embed", (b, cfg.embed_dim)),),
            ),
            NetworkSpec(
                "posterior",
                inputs=(deter, stoch, action, TensorSpec("embed", (b, cfg.embed_dim)), noise),
                outputs=nexts,
            ),
            NetworkSpec(
                "imagine",
                inputs=(deter, stoch, action, noise),
                outputs=(*nexts, TensorSpec("reward", (b,)), TensorSpec("cont", (b,))),
            ),
            NetworkSpec("actor", inputs=(deter, stoch), outputs=(TensorSpec("action", (b, a)),)),
        )
        common = {
            "image": cfg.image,
            "deter": d,
            "stoch": cfg.stoch,
            "classes": cfg.classes,
            "action_dim": a,
        }
        act = ProgramSpec(RSSMActProgram.name, common)
        plan = ProgramSpec(
            RSSMPlanProgram.name,
            {
                **common,
                "candidates": cfg.candidates,
                "horizon": cfg.horizon,
                "iterations": cfg.iterations,
                "elites": cfg.elites,
                "gamma": cfg.gamma,
                "plan_std": cfg.plan_std,
            },
            hz=cfg.plan_hz,
        )
        return ModelSpec(
            kind=self.kind,
            preset=preset,
            networks=networks,
            program=act,
            programs={"act": act, "plan": plan},
            hz=cfg.hz,
            config=config_dict(cfg),
        )
