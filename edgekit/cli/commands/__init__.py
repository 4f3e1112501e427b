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


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("targets")(targets)
    app.command("distill")(distill)
    app.command("export")(export)
    app.command("quantize")(quantize)
    app.command("bench")(bench)
    app.command("compare")(compare)
    app.command("eval")(eval_cmd)
    app.add_typer(recipe_app, name="recipe")
    app.command("run")(run_recipe)
