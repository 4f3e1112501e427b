"""Options shared by the commands, their choices, and the checks made before anything loads.

The choices are listed here (``--help`` shows them, shell completion offers them) and checked by
the verbs' config classes, which hold the same lists (``tests/test_cli_conventions.py`` keeps
the two equal): the CLI builds a verb's config and checks its files before torch or a model
loads, so a usage error is one line and quick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgekit.cli.env import ENV_TARGET, ENV_THREADS
from edgekit.errors import InputSpecError
from edgekit.targets import TARGETS

if TYPE_CHECKING:
    from edgekit.loader import Source

# the choices of each option (the config classes' Literal types hold the same)
TARGET_NAMES = tuple(TARGETS.names())
BENCH_RUNTIMES = ("ort", "openvino", "torch", "tensorrt")
GATES = ("p50", "p90", "p99", "max", "mean")
BENCH_PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int16")
QUANTIZE_PRECISIONS = ("int8", "int4", "mixed")
METHODS = ("minmax", "percentile", "entropy")
BLOCK_SIZES = (32, 64, 128)
FORMATS = ("onnx", "qnn", "tensorrt")
TENSORRT_PRECISIONS = ("fp16", "int8", "fp32")
ENVS = ("reacher",)


def completer(choices: Sequence[object]) -> Callable[[str], list[str]]:
    """Shell completion of an option's choices."""

    def complete(incomplete: str) -> list[str]:
        return [str(c) for c in choices if str(c).startswith(incomplete)]

    return complete


def metavar(choices: Sequence[object]) -> str:
    """``[a|b|c]``: how ``--help`` shows an option's choices."""
    return "[" + "|".join(map(str, choices)) + "]"


def choice_option(name: str, choices: Sequence[object], help: str, **kw: Any) -> Any:
    """A ``typer.Option`` whose help lists ``choices`` and whose completion offers them (the
    value is checked by the verb's config, with edgekit's one-line message)."""
    return typer.Option(
        name, metavar=metavar(choices), help=help, autocompletion=completer(choices), **kw
    )


ModelArg = Annotated[
    str,
    typer.Argument(
        metavar="MODEL",
        help="zoo:NAME[:PRESET], FILE.py:factory, pkg.module:factory, FILE.onnx, FILE.pt2, "
        "or an artifact folder.",
        show_default=False,
    ),
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        "--weights", metavar="FILE", help="Trained weights (.safetensors) for a zoo model."
    ),
]
InputsOpt = Annotated[
    Path | None,
    typer.Option("--inputs", metavar="FILE", help="Sample inputs (.npz) for a factory/pt2 model."),
]
OutOpt = Annotated[
    Path, typer.Option("--out", "-o", metavar="DIR", help="Artifact folder to write.")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")]
JSON_HELP = (
    "Write the report as JSON to FILE, or to stdout with '-' (then stdout carries the JSON "
    "and nothing else; the rest goes to stderr)."
)
JsonReportOpt = Annotated[str | None, typer.Option("--json", metavar="FILE|-", help=JSON_HELP)]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print only errors and the verdict line (with --json -: only the JSON).",
    ),
]
TargetOpt = Annotated[
    str,
    typer.Option(
        "--target",
        "-t",
        metavar="TARGET",
        envvar=ENV_TARGET,
        help=f"Target profile: {', '.join(TARGET_NAMES)} (see edgekit targets).",
        autocompletion=completer(TARGET_NAMES),
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        envvar=ENV_THREADS,
        help="Intra-op threads. Default: the CPUs this process may use.",
        show_default=False,
    ),
]
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


def check_data(value: str | None, required: str) -> None:
    """``--calib`` / ``--data`` before any model loads: given (else ``required``, the message),
    and 'synthetic' or an existing file or folder."""
    if value is None:
        raise InputSpecError(required)
    if value != "synthetic" and not Path(value).exists():
        raise InputSpecError(f"{value}: no such calibration file or folder")


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
    from edgekit.usercode import default_timeout
    from edgekit.zoo_table import check_zoo_ref

    check_zoo_ref(model)  # an unknown zoo name or preset fails before torch loads
    allow_plugins(allow_plugin)
    default_timeout(timeout)  # every other piece of user code the command runs, too
    return load(model, weights=weights, inputs=inputs, allow_pickle=allow_pickle, timeout=timeout)
