"""Open a ``torch.export`` archive (``.pt2``) without letting it run code.

``torch.export.load`` executes code from the file in several places (torch 2.13,
``torch/export/pt2_archive/_package.py`` and ``torch/_export/serde/serialize.py``):

* weights and constants whose payload config says ``use_pickle`` (tensor subclasses) go through
  ``torch.load(weights_only=False)``; ``custom_obj_*`` constants through the TorchScript
  unpickler and ``opaque_obj_*`` constants through ``pickle.loads``;
* the sample inputs (``data/sample_inputs/<model>.pt``, in every archive) and legacy
  ``<model>.pt`` weights/constants are ``torch.load``-ed with ``weights_only=True``, but torch
  retries with ``weights_only=False`` when that fails;
* symbolic shape expressions in ``models/<model>.json`` are parsed with ``sympy.sympify``,
  which ``eval``s the string;
* compiled AOTInductor models (``data/aotinductor/``) are shared libraries it loads;
* a zip without the archive layout falls back to the torch 2.7 format, whose parts are again
  ``torch.load``-ed with the same unsafe retry.

:func:`check_pt2` reads the zip and JSON only (nothing is unpickled except by torch's
``weights_only`` loader, which refuses anything but tensors and plain containers) and refuses
each of these unless the user trusts the file (``--allow-pickle``). An archive that
``torch.export.save`` wrote for an ordinary module (plain tensors) passes.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.errors import ModelLoadError
from edgekit.spec import Dim
from edgekit.usercode import UserCode

_TRUST = "pass --allow-pickle only if you trust this file"
# Torch's own loaders read these entries as plain tensor data.
_RAW = {"data/weights/": re.compile(r"weight_[0-9]+"),
        "data/constants/": re.compile(r"tensor_[0-9]+")}  # fmt: skip
# Strings in srepr output: symbol names (s0, u3...) and Float mantissas; no builtin's name fits.
_STRING = re.compile(r"[a-z]+[0-9]+|[0-9]+(\.[0-9]*)?([eE][+\-]?[0-9]+)?")
_OPS = {"(", ")", ",", "=", "+", "-", "*", "/", "**"}


def check_pt2(path: Path, allow_pickle: bool) -> None:
    """Refuse ``path`` (:class:`ModelLoadError`) if loading it would run code from the file,
    unless ``allow_pickle``; also refuse a file that is not a readable archive at all."""
    try:
        with zipfile.ZipFile(path) as z:
            problem = _first_problem(z)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError, TypeError) as e:
        raise ModelLoadError(f"{path}: not a readable torch.export archive ({e})") from None
    if problem and not allow_pickle:
        raise ModelLoadError(
            f"{path}: {problem}; refusing. Re-export it with plain tensors, or {_TRUST}"
        )


def read_pt2(
    path: Path, allow_pickle: bool, guard: UserCode
) -> tuple[Any, list[tuple[str, tuple[Dim, ...], str]]]:
    """Load a ``.pt2`` after :func:`check_pt2`: its module and its user inputs as (name, shape,
    dtype) (a non-static axis is named ``batch``); the archive records no value ranges."""
    import torch

    check_pt2(path, allow_pickle)  # before torch reads it: torch.export.load unpickles
    try:
        with guard.run("loading"):
            ep = torch.export.load(str(path))
            module = ep.module()
        specs = []
        for node in ep.graph.nodes:
            if node.op == "placeholder" and node.name in ep.graph_signature.user_inputs:
                val = node.meta["val"]
                shape = tuple(d if isinstance(d, int) else "batch" for d in val.shape)
                specs.append((node.name, shape, str(val.dtype).removeprefix("torch.")))
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"{path}: not a loadable torch.export archive ({e})") from None
    return module, specs


# Entries torch.export.save writes besides the models' own (allow-list: anything else refuses).
_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version",
          ".data/serialization_id"}  # fmt: skip
_MODEL = re.compile(r"models/([A-Za-z0-9_.\-]+)\.json")
_LAYOUT = "not in the torch.export.save layout (torch 2.7 archives are unpickled)"


def _first_problem(z: zipfile.ZipFile) -> str | None:
    """The first reason loading would run code, or the first entry the checker does not
    understand (the archive is checked as an allow-list: torch loads entries we would not see)."""
    names = z.namelist()
    if len(set(names)) != len(names):  # zip readers disagree on which duplicate they read
        return "the archive has duplicate entries, so what torch would load cannot be checked"
    if not names or "/" not in names[0]:
        return _LAYOUT
    root = names[0].split("/", 1)[0] + "/"
    outside = [n for n in names if not n.startswith(root)]
    if outside:
        return f"entry {outside[0]!r} lies outside the archive's folder {root!r}"
    entries = {n[len(root) :]: n for n in names}
    if "archive_version" not in entries:
        return _LAYOUT
    if any(e.startswith("data/aotinductor/") for e in entries):
        return "it holds compiled AOTInductor code (a shared library torch would load)"
    models = [m.group(1) for e in entries if (m := _MODEL.fullmatch(e))]
    if not models:
        return "no models/*.json in the archive"
    known = set(_FIXED)
    for model in models:
        known |= {f"models/{model}.json", f"data/sample_inputs/{model}.pt"}
        for what, entry in _pickled_parts(z, entries, model, known):
            return f"{what} ({entry}) would be unpickled, which can run code"
        expr = _unsafe_expression(json.loads(z.read(entries[f"models/{model}.json"])))
        if expr is not None:
            return f"a shape expression {expr[:60]!r} in models/{model}.json would be evaluated"
    for entry in entries:
        if entry not in known and not entry.startswith("extra/"):  # extra/: read as text
            return (f"unexpected entry {entry!r} (torch.export.load would read it; edgekit only "
                    "accepts what torch.export.save writes for plain-tensor models)")  # fmt: skip
    return None


def _pickled_parts(
    z: zipfile.ZipFile, entries: dict[str, str], model: str, known: set[str]
) -> Iterator[tuple[str, str]]:
    """(what, entry) for each part of ``model`` that torch would unpickle unsafely; adds the
    entries it checked to ``known``."""
    for folder, kind in (("data/weights/", "weights"), ("data/constants/", "constants")):
        legacy = f"{folder}{model}.pt"
        if legacy in entries:
            known.add(legacy)
            if not _weights_only_loads(z.read(entries[legacy])):
                yield f"legacy {kind} that torch's safe loader rejects", legacy
            continue
        config_entry = f"{folder}{model}_{kind}_config.json"
        if config_entry not in entries:
            continue  # torch fails on it without unpickling anything
        known.add(config_entry)
        config = json.loads(z.read(entries[config_entry])).get("config", {})
        for fqn, meta in config.items():
            path_name = str(meta.get("path_name", ""))
            if meta.get("use_pickle") or not _RAW[folder].fullmatch(path_name):
                yield f"{kind[:-1]} {fqn!r} stored as a pickle", folder + path_name
            known.add(folder + path_name)
    sample = f"data/sample_inputs/{model}.pt"
    if sample in entries and not _weights_only_loads(z.read(entries[sample])):
        yield "sample inputs that torch's safe loader rejects (torch retries unsafely)", sample


def _weights_only_loads(data: bytes) -> bool:
    """Whether torch's restricted unpickler accepts ``data`` (then torch never retries with the
    unrestricted one); an empty payload is not unpickled at all."""
    if not data:
        return True
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception:
        return False
    return True


def _unsafe_expression(node: Any) -> str | None:
    """The first ``expr_str`` that could do more than build a sympy expression, if any.

    Torch writes these with ``sympy.srepr`` (``Add(Symbol('s0', integer=True), Integer(1))``);
    only sympy/torch expression class names, keyword flags, numbers and identifier-like strings
    are let through, so ``eval`` can only construct expressions.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr_str" and isinstance(value, str) and not _safe_expression(value):
                return value
            found = _unsafe_expression(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _unsafe_expression(item)
            if found is not None:
                return found
    return None


def _safe_expression(text: str) -> bool:
    allowed = _expression_names()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    previous = ""
    for tok in tokens:
        if tok.type == tokenize.NAME:
            if tok.string not in allowed and not re.fullmatch(r"[a-z]+[0-9]+", tok.string):
                return False
        elif tok.type == tokenize.STRING:
            quote = tok.string[:1]
            if quote not in "'\"" or not _STRING.fullmatch(tok.string[1:-1]):
                return False
        elif tok.type == tokenize.OP:
            # no attribute access, subscripts, literals, walrus, nor calling a call's result
            if tok.string not in _OPS or (tok.string == "(" and previous == ")"):
                return False
        elif tok.type not in (tokenize.NUMBER, tokenize.NEWLINE, tokenize.ENDMARKER):
            return False
        previous = tok.string
    try:
        return _digits(ast.parse(text, mode="eval").body) <= _MAX_DIGITS
    except (SyntaxError, ValueError, RecursionError):
        return False


# Sympy evaluates arithmetic on literals as it builds them: Pow(Integer(10), Integer(10**9))
# would hang the loader (no --timeout needed to be safe). A shape is at most an int64 (19
# digits); an expression whose value could exceed this many digits is refused.
_MAX_DIGITS = 1000
_SIZE_DIGITS = 19.0  # a symbol (a dynamic size) is an int64 at most
_POW = {"Pow", "PowByNatural", "FloatPow"}


def _digits(node: ast.expr) -> float:
    """An upper bound on the decimal digits of the value ``node`` builds (no evaluation)."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or v is None:
            return 1.0
        if isinstance(v, int):
            return v.bit_length() * 0.30103 + 1
        if isinstance(v, float):
            return 309.0
        if isinstance(v, str):  # Float('1.5e300') / Symbol('s0'): a number's digits + exponent
            mantissa, _, exponent = v.lower().partition("e")
            return len(mantissa) + (abs(int(exponent)) if exponent.lstrip("+-").isdigit() else 0)
        return float("inf")
    if isinstance(node, ast.UnaryOp):
        return _digits(node.operand)
    if isinstance(node, ast.BinOp):
        left, right = _digits(node.left), _digits(node.right)
        if isinstance(node.op, ast.Pow):
            return left * _exponent(node.right)
        if isinstance(node.op, ast.Mult):
            return left + right
        return max(left, right) + 1
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, args = node.func.id, [_digits(a) for a in node.args]
        if name == "Symbol":
            return _SIZE_DIGITS
        if name in _POW and len(args) == 2:
            return args[0] * _exponent(node.args[1])
        if name == "LShift" and len(args) == 2:
            return args[0] + _exponent(node.args[1]) * 0.30103
        if name in ("Mul", "Rational"):
            return sum(args)
        if name in ("Integer", "Float"):
            return max(args, default=1.0)
        return max(args, default=1.0) + 1
    return float("inf")


def _exponent(node: ast.expr) -> float:
    """The largest magnitude an exponent may have: a literal's own, else from its digits."""
    while isinstance(node, ast.Call) and node.args and getattr(node.func, "id", "") == "Integer":
        node = node.args[0]
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return float(abs(node.value)) if node.value.bit_length() < 1000 else float("inf")
    digits = _digits(node)
    return 10.0**digits if digits < 300 else float("inf")


_NAMES: set[str] = set()
_SYMPY = {
    "Symbol", "Dummy", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max",
    "Min", "floor", "ceiling", "Abs", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality",
    "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "And", "Or",
    "Not", "Piecewise", "ExprCondPair", "BooleanTrue", "BooleanFalse", "Zero", "One",
    "NegativeOne", "Half", "Infinity", "NegativeInfinity", "NaN", "ComplexInfinity",
}  # fmt: skip


def _expression_names() -> set[str]:
    """Sympy and torch sympy-function class names, plus srepr's keyword flags."""
    if not _NAMES:
        import sympy
        import torch.utils._sympy.functions as torch_functions

        for name in dir(torch_functions):  # torch's own shape functions
            obj = getattr(torch_functions, name)
            if isinstance(obj, type) and issubclass(obj, sympy.Basic):
                _NAMES.add(name)
        # sympy's arithmetic, comparisons and logic; not every sympy class (factorial(10**8)
        # would evaluate for ever)
        _NAMES.update(_SYMPY)
        _NAMES.update({"True", "False", "None", "oo", "zoo", "nan", "true", "false"})
        _NAMES.update(
            {"integer", "positive", "negative", "nonnegative", "nonpositive", "real", "finite"}
        )
        _NAMES.update({"precision", "evaluate"})
    return _NAMES
