"""The stack-model kinds, one folder each: ``config`` (preset sizes), ``modeling`` (torch),
``program`` (the numpy control tick) and ``entry`` (presets, spec, zoo registration).

This package imports numpy only: :func:`build_program` rebuilds a loop program from a manifest
with every kind's program registered, so an exported artifact runs without torch.
"""

from __future__ import annotations

from edgekit.loop import PROGRAMS, LoopProgram
from edgekit.models.diffusion_policy import program as _diffusion_policy  # noqa: F401
from edgekit.models.humanoid import program as _humanoid  # noqa: F401
from edgekit.models.omni_body import program as _omni_body  # noqa: F401
from edgekit.models.reward_model import program as _reward_model  # noqa: F401
from edgekit.models.vla import program as _vla  # noqa: F401
from edgekit.models.world_model import program as _world_model  # noqa: F401
from edgekit.spec import ProgramSpec


def build_program(spec: ProgramSpec) -> LoopProgram:
    """The registered program ``spec.name`` with ``spec.params`` (unknown name: exit 2)."""
    return PROGRAMS.get(spec.name)(spec.params)


__all__ = ["build_program"]
