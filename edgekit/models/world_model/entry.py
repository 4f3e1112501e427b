"""``world-model``: the zoo entry: presets, model spec (io + loop programs), registration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from edgekit.models.base import (
    StackModel,
    ZooEntry,
    check_factors,
    config_dict,
    register,
    scale_width,
)
from edgekit.models.world_model.config import WorldModelConfig
from edgekit.models.world_model.modeling import (
    DreamerRSSM,
)
from edgekit.models.world_model.program import RSSMActProgram, RSSMPlanProgram
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec


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
