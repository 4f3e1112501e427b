"""Hardware target profiles: published figures, default budgets, and whether this host can
measure them.

Figures come from the vendors' data sheets and product briefs (NVIDIA Jetson module data
sheets: dense INT8 = sparse / 2, FP16 derived from it; Qualcomm product briefs). A target that
is not this machine cannot be *measured* here: ``bench`` prints a roofline *estimate* for it,
labelled as such (or exits 1 with ``--require-measured``).

One module per family (``cpu``, ``jetson``, ``qualcomm``): each profile class owns what its
family decides (INT8 schemes, artifact format, estimate precision, roofline factors).
"""

from __future__ import annotations

from edgekit.registry import Registry
from edgekit.targets import cpu, jetson, qualcomm
from edgekit.targets.base import DEFAULT_HEADROOM, Target
from edgekit.targets.cpu import CpuTarget
from edgekit.targets.jetson import JetsonTarget
from edgekit.targets.qualcomm import QualcommTarget

TARGETS: Registry[Target] = Registry("target")
for _t in (*cpu.PROFILES, *jetson.PROFILES, *qualcomm.PROFILES):
    TARGETS.add(_t.name, _t, _t.aliases)


def get_target(name: str) -> Target:
    return TARGETS.get(name)


def why_not_measurable(t: Target) -> str:
    return t.why_not_measurable()


__all__ = [
    "DEFAULT_HEADROOM",
    "TARGETS",
    "CpuTarget",
    "JetsonTarget",
    "QualcommTarget",
    "Target",
    "get_target",
    "why_not_measurable",
]
