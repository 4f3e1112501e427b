"""``edgekit recipe check``: validate a recipe file without running it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

recipe_app = typer.Typer(
    help="Recipe files (recipes/*.yaml): check one without running it.", no_args_is_help=True
)


@recipe_app.command("check")
def recipe_check(
    file: Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)],
) -> None:
    """Validate a recipe (schema, stages, targets, budgets, the model's factory file) without
    running anything."""
    from edgekit.cli.render import line
    from edgekit.run import RecipeError, load_recipe

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
