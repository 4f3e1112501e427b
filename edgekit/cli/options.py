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
BUDGET_HELP = (
    "a number: the worst whole-tick relative L2 of the float outputs (at most); or "
    "METRIC=LIMIT: token_agreement=0.95 (decoded tokens), choice_agreement=0.9 (a reranker's "
    "choice), the fraction equal to the reference on held-out ticks (at least)"
)


def budget(text: str | None) -> float | str | None:
    """``--max-error`` as given: a plain number stays a number (so a bad one reads
    ``--max-error -1.0: must be > 0``), ``METRIC=LIMIT`` stays text for the config to parse."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


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
