"""Explicit grids: a sampler's own timesteps (DDPM, DDIM) or sigmas (flow-matching Euler).

diffusers takes them as ``set_timesteps(timesteps=[...])`` (DDPM) and ``set_timesteps(sigmas=
[...])`` (flow-matching Euler); edgekit's DDIM takes explicit timesteps the same way (diffusers'
DDIM does not): each step goes to the next timestep of the list and the last one to the clean
sample (``alphas_cumprod`` of 1), which is how diffusers' DDPM uses a custom list and how a
step-distilled student samples on a subset of its teacher's grid.

Flow sigmas are diffusers' ``sigmas`` argument: before the scheduler's ``shift``, which
diffusers applies to them in float32 (then appends the final 0).
"""

from __future__ import annotations

import json
import math
from itertools import pairwise
from numbers import Integral, Real
from typing import Any

import numpy as np

from edgekit.errors import BadInputError

#: scheduler kind -> the explicit grid it takes
GRIDS = {"ddpm": "timesteps", "ddim": "timesteps", "flow-euler": "sigmas"}


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_grid(kind: str, given: str, source: str) -> None:
    """Refuse an explicit grid (``given``: "timesteps" or "sigmas") a kind does not take."""
    if GRIDS.get(kind) != given:
        supported = "; ".join(
            f"{g} for {', '.join(k for k in GRIDS if GRIDS[k] == g)}"
            for g in dict.fromkeys(GRIDS.values())
        )
        raise BadInputError(
            f"{source}: explicit {given} are not supported by edgekit's {kind} scheduler; "
            f"supported: {supported}"
        )


def explicit_timesteps(
    kind: str, options: dict[str, Any], k: int, given: Any, source: str
) -> np.ndarray:
    """The checked explicit timesteps (int64, descending) for ``k`` inference steps."""
    check_grid(kind, "timesteps", source)
    n = options["num_train_timesteps"]
    ok = (
        isinstance(given, list | tuple)
        and len(given) == k
        and all(isinstance(t, Integral) and not isinstance(t, bool) for t in given)
        and all(0 <= int(t) < n for t in given)
        and all(int(a) > int(b) for a, b in pairwise(given))
    )
    if not ok:
        raise BadInputError(
            f"{source}: timesteps={_short(given)} is not supported; supported: "
            f"{k} (num_inference_steps) distinct descending integers in [0, {n - 1}]"
        )
    return np.asarray([int(t) for t in given], np.int64)


def explicit_flow_sigmas(options: dict[str, Any], k: int, given: Any, source: str) -> np.ndarray:
    """diffusers' flow sigmas for explicit ``sigmas`` (float32, shifted, a final 0 appended)."""
    ok = (
        isinstance(given, list | tuple)
        and len(given) == k
        and all(isinstance(s, Real) and not isinstance(s, bool) for s in given)
        and all(math.isfinite(float(s)) and 0 < float(s) <= 1 for s in given)
    )
    if ok:
        s = np.asarray([float(v) for v in given], np.float32)
        shift = float(options["shift"])
        s = shift * s / (1 + (shift - 1) * s)  # float32, as diffusers shifts given sigmas
        ok = bool(np.all(s > 0) and np.all(np.diff(s) < 0))
    if not ok:
        raise BadInputError(
            f"{source}: sigmas={_short(given)} is not supported; supported: {k} "
            "(num_inference_steps) distinct descending numbers in (0, 1] (before the shift)"
        )
    return np.concatenate([s.astype(np.float32), np.zeros(1, np.float32)])
