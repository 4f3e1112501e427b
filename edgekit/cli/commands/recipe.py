"""``edgekit recipe check``: validate a recipe file without running it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.options import QuietOpt

recipe_app = typer.Typer(
    help="Recipe files (recipes/*.yaml): check one without running it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@recipe_app.command(
    "check", epilog="\b\nExample:\n  edgekit recipe check recipes/diffusion-policy.yaml"
)
def recipe_check(
    file: Annotated[
        Path, typer.Argument(metavar="RECIPE", help="Recipe YAML file.", show_default=False)
    ],
    quiet: QuietOpt = False,
) -> None:
    """Validate a recipe without running anything.

    Checks the schema, the stages, targets and budgets, and that the model's factory file
    exists. Prints two lines on success (none with --quiet).
    """
    from edgekit.cli.guard import output
    from edgekit.cli.render import line
    from edgekit.run import RecipeError, load_recipe

    output(None, quiet)

    r = load_recipe(file)
    try:
        r.source_ref(file.parent)  # a FILE.py:factory model's file must exist
    except RecipeError as e:
        raise RecipeError(f"{file}: {e}") from None
    stages = " -> ".join(s.stage for s in r.stages)
    budgets = ", ".join(
        f"{t} ({b.budget_ms:g} ms)" if b.budget_ms else f"{t} (target default)"
        for t, b in r.targets.items()
    )
    line(f"{file}: ok: recipe {r.name!r} (schema_version {r.schema_version}), model {r.model}")
    line(f"  stages: {stages}" + (f"; targets: {budgets}" if budgets else ""))
