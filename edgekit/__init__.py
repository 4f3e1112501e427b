"""edgekit: fit a robot's AI stack on the robot.

The Python API mirrors the CLI::

    import edgekit
    src = edgekit.load("zoo:diffusion-policy:tiny")
    art = edgekit.export(src, "out/dp")            # edgekit export ... --format onnx
    report = edgekit.bench("out/dp", target="cpu")  # edgekit bench ...
    print(report.stats.p99, report.passed)

Heavy backends (torch, onnxruntime) are imported only when a function needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.bench import BenchReport
    from edgekit.export import ExportResult
    from edgekit.loader import Source

__version__ = "0.1.0"
__all__ = ["__version__", "bench", "export", "load"]


def load(ref: str, **kwargs: Any) -> Source:
    """Resolve a model reference (see :mod:`edgekit.loader`)."""
    from edgekit.loader import load as _load

    return _load(ref, **kwargs)


def export(
    model: str | Source,
    out: str | Path,
    *,
    format: str = "onnx",
    force: bool = False,
    check_parity: bool = True,
) -> ExportResult:
    """Export a model to an artifact folder, with a parity check (``edgekit export``)."""
    from edgekit.errors import BadInputError
    from edgekit.export import FORMATS

    if format not in FORMATS:
        raise BadInputError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
    source = load(model) if isinstance(model, str) else model
    return FORMATS[format](source, out, force=force, check_parity=check_parity)


def bench(model: str | Source, **kwargs: Any) -> BenchReport:
    """Measure the whole control tick against a budget (``edgekit bench``)."""
    from edgekit.bench import bench as _bench

    return _bench(model, **kwargs)
