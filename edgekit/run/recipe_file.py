"""Recipe files on disk: read (YAML, ``--set KEY=VALUE`` overrides), validate against
:mod:`edgekit.run.schema` with every problem as one located line, write back and hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgekit.run.schema import SCHEMA_VERSION, STAGE_ORDER, Recipe, RecipeError


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read and validate a recipe file; every problem is one :class:`RecipeError` line.

    ``overrides``: ``KEY=VALUE`` items applied before validation (``edgekit run --set``), e.g.
    ``stages[0].steps=50`` or ``targets.cpu.budget_ms=20``; VALUE is read as YAML.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RecipeError(f"{path}: {at}bad YAML: {problem}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a text (UTF-8) file") from None
    for item in overrides or []:
        apply_override(doc, item)
    return parse_recipe(doc, str(path))


_TOKEN = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]|(\.)")


def apply_override(doc: Any, item: str) -> None:
    """Set ``KEY=VALUE`` (a dotted path with [i] list indices) in a parsed recipe, in place."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set {item!r}: expected KEY=VALUE, e.g. stages[0].steps=50")
    parts: list[str | int] = []
    pos = 0
    while pos < len(key):
        m = _TOKEN.match(key, pos)
        if not m:
            raise RecipeError(f"--set {item!r}: cannot read the key at {key[pos:]!r}")
        if m.group(1):
            parts.append(m.group(1))
        elif m.group(2):
            parts.append(int(m.group(2)))
        pos = m.end()
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise RecipeError(f"--set {item!r}: the value is not valid YAML") from None
    node = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = _location(tuple(parts[: i + 1]))
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise RecipeError(f"--set {item!r}: {where}: no such list item in the recipe")
        elif not isinstance(node, dict):
            raise RecipeError(f"--set {item!r}: {where}: not a mapping in the recipe")
        if last:
            node[part] = value
        else:
            if isinstance(part, str) and part not in node:
                node[part] = {}
            node = node[part]


def parse_recipe(doc: Any, where: str = "recipe") -> Recipe:
    """Validate a recipe already parsed from YAML/JSON."""
    if not isinstance(doc, dict):
        raise RecipeError(f"{where}: expected a mapping of recipe keys, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        raise RecipeError(
            f"{where}: schema_version: {version!r} is not supported (this edgekit reads "
            f"{SCHEMA_VERSION})"
        )
    try:
        return Recipe.model_validate(doc)
    except ValidationError as e:
        raise RecipeError(f"{where}: {_first_error(e)}") from None


def dump_recipe(recipe: Recipe) -> str:
    """YAML of a recipe, defaults left out (loads back to an equal recipe)."""
    import yaml

    data = recipe.model_dump(mode="json", exclude_defaults=True)
    data["stages"] = [_tags(s) | d for s, d in zip(recipe.stages, data["stages"], strict=True)]
    data = {"schema_version": recipe.schema_version, **data}
    return str(yaml.safe_dump(data, sort_keys=False))


def _tags(stage: Any) -> dict[str, Any]:
    """The keys that pick a stage's class (never left out as defaults)."""
    keys = ("stage", "precision", "format")
    return {k: getattr(stage, k) for k in keys if k in type(stage).model_fields}


def recipe_hash(recipe: Recipe) -> str:
    import json

    text = json.dumps(recipe.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


_STAGE_TAGS = set(STAGE_ORDER)
# the tags of the stage union and of the per-method unions inside it (quantize by precision,
# export by format): pydantic adds them to an error's path, but the user never wrote them
_METHOD_TAGS = {"quantize": ("precision", ("int8", "int4", "mixed")),
                "export": ("format", ("onnx", "qnn", "tensorrt"))}  # fmt: skip
_TAGS = _STAGE_TAGS | {t for _, tags in _METHOD_TAGS.values() for t in tags}


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif loc[0] == "stages" and i in (2, 3) and part in _TAGS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _first_error(e: ValidationError) -> str:
    errors = e.errors(include_url=False)
    err = errors[0]
    loc = _location(tuple(err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "missing (required)"
    elif kind == "union_tag_invalid" and len(err["loc"]) == 3 and err["loc"][2] in _METHOD_TAGS:
        key, tags = _METHOD_TAGS[err["loc"][2]]
        got = err["input"].get(key) if isinstance(err.get("input"), dict) else None
        msg = f"{got!r}: expected one of {', '.join(tags)}"
        loc = f"{loc}.{key}"
    elif kind == "union_tag_invalid":
        tag = err.get("input", {}).get("stage") if isinstance(err.get("input"), dict) else None
        msg = f"unknown stage {tag!r} (stages: {', '.join(STAGE_ORDER)})"
        loc = f"{loc}.stage"
    elif kind == "union_tag_not_found":
        msg = f"missing 'stage' key (one of {', '.join(STAGE_ORDER)})"
    elif kind == "value_error":
        # our cross-field rules carry their own location: "stages[2].format: ..."
        text = str(err["msg"]).removeprefix("Value error, ")
        return text if not loc else f"{loc}: {text}"
    else:
        msg = f"{err['msg']} (got {err.get('input')!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {msg}{more}" if loc else f"{msg}{more}"
