"""``edgekit run recipe.yaml``: a deployment as one declarative file, one command, one verdict.

    result = edgekit.run("recipes/humanoid.yaml", out="out/humanoid", preset="tiny")
    result.exit_code          # 0 every gate passed, 1 a gate failed
    result.report["gates"]    # one entry per fidelity gate and per target budget

``schema`` is the recipe model, ``recipe_file`` reads and writes recipe files, ``runner`` the
stage loop and cache, ``stages`` one function per stage, ``reports`` the JUnit / Markdown
writers and ``plot`` the latency figures.
"""

from edgekit._callable import make_callable
from edgekit.run.recipe_file import dump_recipe, load_recipe, parse_recipe
from edgekit.run.runner import RunError, RunResult, run
from edgekit.run.schema import Recipe, RecipeError

__all__ = [
    "Recipe",
    "RecipeError",
    "RunError",
    "RunResult",
    "dump_recipe",
    "load_recipe",
    "parse_recipe",
    "run",
]

make_callable(__name__, run)
