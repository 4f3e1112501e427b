"""The stack-model kinds, one folder each: ``config`` (preset sizes), ``modeling`` (torch),
``program`` (the numpy control tick), ``entry`` (presets, spec, zoo registration) and, for
the kinds that can drive a simulated robot, ``observe`` (the program in closed loop).

This package imports numpy only: :func:`build_program` rebuilds a loop program from a manifest
with every kind's program registered, so an exported artifact runs without torch, and
:func:`get_binding` gives a kind's closed-loop binding for ``edgekit eval``.
"""

from __future__ import annotations

from edgekit.loop import PROGRAMS, LoopProgram
from edgekit.loop.blocks import program as _declared_tick  # noqa: F401
from edgekit.models import declared as _declared_tick_binding  # noqa: F401
from edgekit.models.diffusion_policy import observe as _diffusion_policy_observe  # noqa: F401
from edgekit.models.diffusion_policy import program as _diffusion_policy  # noqa: F401
from edgekit.models.humanoid import observe as _humanoid_observe  # noqa: F401
from edgekit.models.humanoid import program as _humanoid  # noqa: F401
from edgekit.models.observe import BINDINGS, ClosedLoopBinding
from edgekit.models.omni_body import program as _omni_body  # noqa: F401
from edgekit.models.reward_model import program as _reward_model  # noqa: F401
from edgekit.models.vla import program as _vla  # noqa: F401
from edgekit.models.vla_flow import observe as _vla_flow_observe  # noqa: F401
from edgekit.models.vla_flow import program as _vla_flow  # noqa: F401
from edgekit.models.world_model import program as _world_model  # noqa: F401
from edgekit.spec import ModelSpec, ProgramSpec


def build_program(spec: ProgramSpec) -> LoopProgram:
    """The registered program ``spec.name`` with ``spec.params`` (unknown name: exit 2), or
    a user's plugin program (``edgekit.plugins``, after its trust and source checks)."""
    if spec.name == "plugin":
        from edgekit.plugins import load_plugin

        return load_plugin(spec.params)
    return PROGRAMS.get(spec.name)(spec.params)


def check_networks(spec: ModelSpec, where: str) -> None:
    """Every registered program of ``spec`` accepts its networks' io (one-line exit 2 if not:
    e.g. an expert whose KV-cache inputs are not the prefix's KV outputs)."""
    nets = {n.name: n for n in spec.networks}
    for pspec in [spec.program, *spec.programs.values()]:
        if pspec.name in PROGRAMS:  # plugins are checked when they are declared
            PROGRAMS.get(pspec.name).check_networks(pspec.params, nets, where)


def get_binding(kind: str) -> ClosedLoopBinding:
    """How ``kind``'s program is driven in closed loop (a kind without one: exit 2)."""
    return BINDINGS.get(kind)


__all__ = ["build_program", "check_networks", "get_binding"]
