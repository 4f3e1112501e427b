"""``edgekit distill``: width/depth students and diffusion step distillation.

One verb, a config object, two objectives (``outputs.OutputObjective`` for width/depth
students, ``steps.StepObjective`` for few-step samplers) on one training loop (``train``)::

    distill("zoo:vla:tiny", "out/vla-w05", DistillConfig(width=0.5), "calib.npz")
"""

from edgekit._callable import make_callable
from edgekit.distill.api import DistillGateFailed, DistillResult, distill
from edgekit.distill.config import DistillConfig

__all__ = ["DistillConfig", "DistillGateFailed", "DistillResult", "distill"]

make_callable(__name__, distill)
