"""The base of every verb's config class, and how its validation errors read.

One strict pydantic class per verb (and per method where the options differ): the CLI only
builds it from its options, the Python API takes it as is, and a recipe's ``stages:`` list is a
discriminated union of the same classes. A new option is a field here, an option in the
command, and the code that uses it.

    from edgekit.quantize import Int8Config
    Int8Config(target="jetson-orin-nano", max_error=0.05)
    Int8Config.from_options(max_error=-1)   # BadInputError: --max-error -1: must be > 0
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from edgekit.errors import BadInputError
from edgekit.gates import BUDGET_METRICS, BudgetRangeError, ErrorBudget

C = TypeVar("C", bound="VerbConfig")


class VerbConfig(BaseModel):
    """Strict (unknown keys and NaN/inf refused), frozen, versioned settings of one verb."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_version: ClassVar[int] = 1

    @classmethod
    def from_options(cls: type[C], **options: Any) -> C:
        """Validate ``options`` (None means "not given": the default applies); a bad value is
        a :class:`BadInputError` naming the command-line option."""
        given = {k: v for k, v in options.items() if v is not None}
        try:
            return cls.model_validate(given)
        except ValidationError as e:
            raise BadInputError(first_error(e, option_style=True)) from None

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, **self.model_dump(mode="json")}


def _budget(value: Any) -> ErrorBudget:
    try:
        return ErrorBudget.parse(value)
    except BudgetRangeError as e:
        kind = "greater_than" if e.bound == "gt" else "less_than_equal"
        raise PydanticCustomError(kind, str(e), {e.bound: e.edge}) from None
    except ValueError as e:
        raise PydanticCustomError(
            "error_budget",
            "{why}: expected a number (the whole-tick relative L2) or METRIC=LIMIT with METRIC "
            "one of {metrics}",
            {"why": str(e), "metrics": ", ".join(BUDGET_METRICS)},
        ) from None


Budget = Annotated[
    ErrorBudget,
    PlainValidator(_budget),
    PlainSerializer(lambda b: b.to_json()),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]}),
]
"""A fidelity budget field (``max_error``): ``0.05`` or ``token_agreement=0.95``."""


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def describe(err: Any) -> str:
    """What is wrong with one value, in words (pydantic's error dict -> one phrase)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing (required)"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', '')}".replace("'", "")
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}  # fmt: skip
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        shown = f"{limit:,}" if isinstance(limit, int) else str(limit)
        return f"must be {bounds[kind]} {shown}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def first_error(e: ValidationError, *, option_style: bool = False) -> str:
    """The first problem as one line: ``--block-size 48: expected 32, 64 or 128``."""
    errors = e.errors(include_url=False)
    err = errors[0]
    names = [str(p) for p in err["loc"] if isinstance(p, str) and p not in _TAGS]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if err["type"] == "value_error" and not names:  # a cross-field rule: its own words
        return describe(err) + more
    field = names[-1] if names else "options"
    where = option_name(field) if option_style else field
    if err["type"] not in ("missing", "extra_forbidden", "value_error"):
        where += f" {err.get('input')!r}"
    return f"{where}: {describe(err)}{more}"


# pydantic adds a tagged union's tag to an error's location: not a key the user wrote
_TAGS = {"int8", "int4", "mixed", "onnx", "qnn", "tensorrt"}
