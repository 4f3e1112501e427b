"""The commands of ``edgekit``, one module each: parse the options, call the library, render.

:func:`register` adds them to the app in the order ``edgekit --help`` lists them. Every module
imports the library inside its command, so ``edgekit --help`` loads no torch or onnxruntime.
"""

from __future__ import annotations

import typer

from edgekit.cli.commands.bench import bench
from edgekit.cli.commands.compare import compare
from edgekit.cli.commands.distill import distill
from edgekit.cli.commands.eval import eval_cmd
from edgekit.cli.commands.export import export
from edgekit.cli.commands.models import models
from edgekit.cli.commands.quantize import quantize
from edgekit.cli.commands.recipe import recipe_app
from edgekit.cli.commands.run import run_recipe
from edgekit.cli.commands.targets import targets

# one example per command, shown at the end of its --help
EXAMPLES = {
    "models": "edgekit models --kind vla --json -",
    "targets": "edgekit targets --json targets.json",
    "distill": "edgekit distill zoo:vla:tiny --width 0.5 --data synthetic --out out/vla-w05",
    "export": "edgekit export zoo:diffusion-policy:tiny --out out/dp",
    "quantize": "edgekit quantize zoo:humanoid:tiny --calib synthetic --out out/h-int8",
    "bench": "edgekit bench out/dp --target cpu --json out/dp.json",
    "compare": "edgekit compare out/h-fp32 out/h-int8 --target cpu --out out/compare",
    "eval": "edgekit eval out/ctl-int8 --episodes 50 --min-success-ratio 0.9",
    "run": "edgekit run recipes/humanoid.yaml --out out/humanoid",
}


def example(command: str) -> str:
    """The epilog of a command's --help: its example, kept on one line (``\\b``)."""
    return f"\b\nExample:\n  {EXAMPLES[command]}"


def register(app: typer.Typer) -> None:
    for name, fn in (("models", models), ("targets", targets), ("distill", distill),
                     ("export", export), ("quantize", quantize), ("bench", bench),
                     ("compare", compare), ("eval", eval_cmd)):  # fmt: skip
        app.command(name, epilog=example(name))(fn)
    app.add_typer(recipe_app, name="recipe")
    app.command("run", epilog=example("run"))(run_recipe)
