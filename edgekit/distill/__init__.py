"""``edgekit distill``: width/depth students and diffusion step distillation.

One verb, a config object, two objectives (``outputs.OutputObjective`` for width/depth
students, ``steps.StepObjective`` for few-step samplers) on one training loop (``train``)::

    distill("zoo:vla:tiny", "out/vla-w05", DistillConfig(width=0.5), "calib.npz")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgekit._callable import make_callable
from edgekit.distill.config import DistillConfig

if TYPE_CHECKING:
    from edgekit.distill.api import DistillResult, distill

__all__ = ["DistillConfig", "DistillResult", "distill"]


def __getattr__(name: str) -> Any:
    """The verb and its result live with torch (``api``); the config does not, so a recipe
    check or ``import edgekit.distill.config`` stays light."""
    if name in ("distill", "DistillResult"):
        from edgekit.distill import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _distill(*args: Any, **kwargs: Any) -> Any:
    from edgekit.distill.api import distill

    return distill(*args, **kwargs)


make_callable(__name__, _distill)
