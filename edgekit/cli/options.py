"""Options shared by the commands that load a model, and the loader they feed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from edgekit.loader import Source

ModelArg = Annotated[
    str,
    typer.Argument(
        help="zoo:NAME[:PRESET], FILE.py:factory, pkg.module:factory, FILE.onnx, FILE.pt2, "
        "or an artifact folder.",
        show_default=False,
    ),
]
WeightsOpt = Annotated[
    Path | None, typer.Option("--weights", help="Trained weights (.safetensors) for a zoo model.")
]
InputsOpt = Annotated[
    Path | None, typer.Option("--inputs", help="Sample inputs (.npz) for a factory/pt2 model.")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")]
JsonReportOpt = Annotated[Path | None, typer.Option("--json", help="Write the full report.")]
LatencyTicksOpt = Annotated[
    int, typer.Option("--latency-ticks", help="Ticks timed for the speed check (0: skip).")
]
PickleOpt = Annotated[
    bool,
    typer.Option(
        "--allow-pickle",
        help="Trust a model file that runs code when loaded: a pickle checkpoint (.pt/.pth), "
        "or a .pt2 with pickled or evaluated parts. Only for files you trust.",
    ),
]
PluginOpt = Annotated[
    bool,
    typer.Option(
        "--allow-plugin",
        help="Import the plugin loop program (your own LoopProgram class) an artifact names: "
        "it is code. Only for artifacts you trust.",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds a FILE.py:factory / module:factory may take to import, build the model "
        "and run its sample forward (exit 2 past it). Default: no limit.",
        show_default=False,
    ),
]


def load_source(
    model: str,
    weights: Path | None,
    inputs: Path | None,
    allow_pickle: bool,
    timeout: float | None = None,
    allow_plugin: bool = False,
) -> Source:
    """The model behind ``ModelArg`` and the options above (commands call it as
    ``options.load_source`` so that tests can replace it)."""
    from edgekit.loader import load
    from edgekit.plugins import allow_plugins

    allow_plugins(allow_plugin)
    return load(model, weights=weights, inputs=inputs, allow_pickle=allow_pickle, timeout=timeout)
