"""edgekit: fit a robot's AI stack on the robot.

The Python API mirrors the CLI::

    import edgekit
    src = edgekit.load("zoo:diffusion-policy:tiny")
    s = edgekit.distill(src, "out/dp-4", DistillConfig(denoise_steps=4),
                        data="episode.npz")        # edgekit distill ...
    art = edgekit.export(src, "out/dp")            # edgekit export ... --format onnx
    q = edgekit.quantize("out/dp", "out/dp-int8", Int8Config(max_error=0.05),
                         calib="episode.npz")      # edgekit quantize ...
    report = edgekit.bench("out/dp", BenchConfig(target="cpu"))  # edgekit bench ...
    print(report.stats.p99, report.passed, report.gates)

One config class per verb (and method) and one gate protocol: a result's ``passed`` and
``gates`` say whether it met its limits; the library does not raise on a missed gate.

Heavy backends (torch, onnxruntime) are imported only when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # For type checkers the verbs are the functions (at run time the subpackages are callable
    # modules, see edgekit/_callable.py, so `import edgekit` stays light).
    from edgekit.bench.api import bench as bench
    from edgekit.distill.api import distill as distill
    from edgekit.eval.api import evaluate as eval
    from edgekit.export import export as export
    from edgekit.loader import Source
    from edgekit.policy import Policy as Policy
    from edgekit.quantize.api import quantize as quantize
    from edgekit.run.runner import run as run

__version__ = "0.3.0"
__all__ = [
    "Policy", "__version__", "bench", "distill", "eval", "export", "load", "quantize", "run",
]  # fmt: skip

# edgekit.distill / .export / .quantize / .bench are packages that can be called like the
# CLI verbs (see edgekit/_callable.py); they are imported on first use, so `import edgekit`
# stays light.
_VERBS = ("distill", "export", "quantize", "bench", "run", "eval")


def __getattr__(name: str) -> Any:
    if name in _VERBS:
        return importlib.import_module(f"edgekit.{name}")
    if name == "Policy":  # the robot side: an artifact's tick, no torch
        return importlib.import_module("edgekit.policy").Policy
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


def load(ref: str, **kwargs: Any) -> Source:
    """Resolve a model reference (see :mod:`edgekit.loader`)."""
    from edgekit.loader import load as _load

    return _load(ref, **kwargs)
