"""The control tick: the core every stage stands on. Imports numpy only, and no stage.

* :mod:`~edgekit.loop.program`: the program base (:class:`LoopProgram`), the registry, the
  :class:`TickContext` a program calls networks through, the :class:`Runtime` protocol.
* :mod:`~edgekit.loop.timing`: the one timed loop (whole ticks, per stage).
* :mod:`~edgekit.loop.capture`: what each network sees inside the loop (calibration feeds).
* :mod:`~edgekit.loop.compare` and :mod:`~edgekit.loop.fidelity`: parity and fidelity metrics
  over whole ticks.
* :mod:`~edgekit.loop.schedulers`: diffusers' sampler updates (DDPM, DDIM, DPM-Solver++,
  flow-matching Euler) between a denoiser's calls, from a ``scheduler_config.json``.

The model kinds' programs live next to their kind (``edgekit/models/<kind>/program.py``) and
register here; ``edgekit.models.build_program`` rebuilds one from a manifest.
"""

from edgekit.loop.program import (
    PROGRAMS,
    Arrays,
    LoopProgram,
    Runtime,
    SingleCall,
    TickContext,
    register_program,
)

__all__ = [
    "PROGRAMS",
    "Arrays",
    "LoopProgram",
    "Runtime",
    "SingleCall",
    "TickContext",
    "register_program",
]
