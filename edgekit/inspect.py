"""Facts about a model for ``edgekit models``: parameters, FLOPs and network calls per tick."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.loader import TorchSource
from edgekit.loop import TickContext
from edgekit.models import build_program
from edgekit.runtimes import TorchRuntime


@dataclass
class ModelFacts:
    kind: str
    category: str
    preset: str
    params: int
    flops_per_tick: float  # counted by torch's FlopCounterMode over one real tick
    calls_per_tick: dict[str, int]
    hz: float
    program: str
    programs: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tick_flops(source: TorchSource, program_name: str | None = None) -> float:
    """FLOPs of one whole tick, counted on the PyTorch model (matmuls, convs, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    pspec = source.spec.programs[program_name] if program_name else source.spec.program
    program = build_program(pspec)
    program.reset(0)
    ctx = TickContext(TorchRuntime(source.networks, source.spec, threads=1))
    obs = program.sample_observation(np.random.default_rng(0))
    counter = FlopCounterMode(display=False)
    with counter:
        program.tick(ctx, obs)
    return float(counter.get_total_flops())


def zoo_facts(kind: str | None = None) -> list[ModelFacts]:
    from edgekit.loader import load
    from edgekit.zoo import ZOO

    rows = []
    kinds = [ZOO.canonical(kind)] if kind else ZOO.names()
    for name in kinds:
        entry = ZOO.get(name)
        for preset in entry.presets:
            src = load(f"zoo:{name}:{preset}")
            assert isinstance(src, TorchSource)
            program = build_program(src.spec.program)
            rows.append(
                ModelFacts(
                    kind=name,
                    category=entry.category,
                    preset=preset,
                    params=sum(p.numel() for p in src.module.parameters()),
                    flops_per_tick=tick_flops(src),
                    calls_per_tick=program.calls_per_tick(),
                    hz=src.spec.hz,
                    program=program.name,
                    programs=list(src.spec.programs),
                )
            )
    return rows
