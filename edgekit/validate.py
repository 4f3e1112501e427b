"""Range checks on user input shared by the library and the CLI: each a one-line error (exit 2).

Kept in the library (not the CLI) so the Python API refuses the same inputs with the same
messages. Every message names the option or file at fault and what would be accepted.

Limits:
    MAX_TICKS: the most timed ticks (``--ticks``, ``--warmup``, ``--latency-ticks``) one run
        takes. One million ticks is ~17 minutes at 1 ms a tick and keeps the per-tick samples
        a report holds (several int64 arrays) in tens of MB; beyond it is a typo.
    MAX_EPISODES: the most simulated episodes one ``eval`` runs per policy (``--episodes``).
        10,000 Reacher episodes take hours; beyond it is a typo (a run that would never end).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BadInputError, InputSpecError, ModelLoadError

MAX_TICKS = 1_000_000
MAX_EPISODES = 10_000


def positive_finite(value: float | None, option: str) -> None:
    """``value`` (when given) must be a finite number > 0; ``nan <= 0`` is False, so say it."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(f"{option} must be a number > 0 (got {value!r})")
    if not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{option} must be a finite number > 0 (got {value})")


def tick_count(value: int, option: str, minimum: int = 0) -> None:
    """A tick count in ``[minimum, MAX_TICKS]``."""
    if not minimum <= value <= MAX_TICKS:
        raise BadInputError(
            f"{option} {value}: expected {minimum} to {MAX_TICKS:,} ticks (the documented maximum)"
        )


# --- loop-program overrides (--loop KEY=VALUE) ------------------------------------------------

ZERO_OK = frozenset({"action_start"})  # integer program parameters for which 0 is meaningful


def loop_override(key: str, value: Any, default: Any, program: str) -> None:
    """An override of a loop-program parameter must have the default's type and a sane value.

    Integer parameters are counts and sizes (steps, horizon, context...): integers >= 1 (>= 0
    for the few in :data:`ZERO_OK`). Float parameters must be finite; lists keep their length.
    """
    where = f"--loop {key}={show_value(value)}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise BadInputError(f"{where}: expected true or false for program {program!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadInputError(f"{where}: expected an integer for program {program!r}")
        low = 0 if key in ZERO_OK else 1
        if value < low:
            raise BadInputError(f"{where}: must be >= {low}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadInputError(f"{where}: expected a number for program {program!r}")
        if not math.isfinite(value):
            raise BadInputError(f"{where}: must be a finite number")
    elif isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise BadInputError(f"{where}: expected a non-empty string for program {program!r}")
    elif isinstance(default, list):
        ok = isinstance(value, list) and len(value) == len(default)
        if not ok or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        ):
            raise BadInputError(f"{where}: expected a list of {len(default)} finite numbers")


def show_value(value: Any) -> str:
    """A --loop value as the user would type it."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


# --- integer inputs: token ids against an embedding's size ------------------------------------


def gather_bounds(model: Any) -> dict[str, int]:
    """Graph inputs used as indices into a Gather on an initializer: input name -> table size.

    That is an embedding lookup (token ids); an id at or beyond the table's size makes
    onnxruntime fail mid-run (or, on some providers, read garbage). Follows Cast/Identity, the
    ops an exporter puts between an integer input and its Gather.
    """
    from onnx import numpy_helper

    init = {i.name: i for i in model.graph.initializer}
    inputs = {v.name for v in model.graph.input if v.name not in init}
    alias = {n: n for n in inputs}  # value name -> the graph input it is a copy of
    out: dict[str, int] = {}
    for node in model.graph.node:  # nodes are topologically sorted in a valid model
        if node.op_type in ("Cast", "Identity") and node.input and node.input[0] in alias:
            alias[node.output[0]] = alias[node.input[0]]
        elif node.op_type == "Gather" and len(node.input) == 2:
            data, idx = node.input
            if idx in alias and data in init:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                dims = list(init[data].dims) or list(numpy_helper.to_array(init[data]).shape)
                if dims:
                    size = int(dims[axis])
                    name = alias[idx]
                    out[name] = min(size, out.get(name, size))
    return out


def int_ranges(
    arrays: Mapping[str, np.ndarray], bounds: Mapping[str, tuple[int, int]], where: str
) -> None:
    """Integer arrays must hold values in ``[low, high)`` where a bound is known."""
    for name, (low, high) in bounds.items():
        a = arrays.get(name)
        if a is None or a.size == 0 or np.asarray(a).dtype.kind not in "iu":
            continue
        lo, hi = int(a.min()), int(a.max())
        if lo < low or hi >= high:
            bad = hi if hi >= high else lo
            raise InputSpecError(
                f"{where}: array {name!r} holds id {bad}, outside [{low}, {high}) (the model's "
                f"embedding/vocabulary size is {high}); fix the ids or the tokenizer"
            )


def observation_bounds(source: Any, program: Any) -> dict[str, tuple[int, int]]:
    """Known value ranges of a loop program's integer observations.

    Zoo programs declare them (``TensorSpec`` low/high of an ``int`` observation: token ids in
    ``[0, vocab)``). A single-call program (an ONNX file, a user factory) declares none; for an
    ONNX source the embedding tables its inputs index give the bound.
    """
    if program.name != "single-call":
        return {
            t.name: (int(t.low), int(t.high))
            for t in program.observation_spec()
            if t.sampler == "int" and np.dtype(t.dtype).kind in "iu"
        }
    files = getattr(source, "files", None)
    if not files:
        return {}
    net = program.params["network"]
    return onnx_bounds(Path(files[net])) if net in files else {}


def onnx_bounds(path: Path) -> dict[str, tuple[int, int]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {k: (0, v) for k, v in gather_bounds(model).items()}


# --- weights ----------------------------------------------------------------------------------


def finite_tensors(tensors: Mapping[str, Any], where: str) -> None:
    """Refuse NaN/Inf in floating-point weights (torch tensors or numpy arrays), naming the
    first tensor that holds them."""
    for name, t in tensors.items():
        if hasattr(t, "is_floating_point"):  # torch: no copy to numpy (bf16 has no numpy twin)
            bad = int((~t.isfinite()).sum()) if t.is_floating_point() else 0
        else:
            a = np.asarray(t)
            bad = int((~np.isfinite(a)).sum()) if a.dtype.kind in "fc" else 0
        if bad:
            raise ModelLoadError(
                f"{where}: tensor {name!r} holds {bad} NaN/Inf value(s); these weights are "
                "corrupt (a diverged training run?): use a good checkpoint"
            )
