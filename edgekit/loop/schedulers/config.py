"""Scheduler configs: the diffusers options edgekit's samplers support, and their checks.

A config is a diffusers ``scheduler_config.json`` dict (``_class_name`` one of :data:`CLASSES`)
or the short form ``{"type": <kind>, ...}`` with the same keys. Missing keys take diffusers'
defaults for that class; keys that start with ``_`` and keys diffusers does not know are
ignored, as diffusers ignores them. Every option that changes the numerics edgekit does not
reproduce is refused with one line naming the key, the value and what is supported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import BadInputError

#: diffusers class name -> edgekit kind
CLASSES = {
    "DDPMScheduler": "ddpm",
    "DDIMScheduler": "ddim",
    "DPMSolverMultistepScheduler": "dpmsolver++",
    "FlowMatchEulerDiscreteScheduler": "flow-euler",
}


@dataclass(frozen=True)
class Option:
    """One config key: diffusers' default, the check of a given value, what the check accepts."""

    default: Any
    ok: Callable[[Any], bool]
    supported: str
    null: Any = None  # what a JSON null stands for, where JSON cannot write the value itself


def _same(value: Any, allowed: Any) -> bool:
    if value is None or allowed is None or isinstance(allowed, bool) or isinstance(value, bool):
        return value is allowed
    return type(value) is type(allowed) and value == allowed


def _one_of(default: Any, *allowed: Any) -> Option:
    text = " or ".join(json.dumps(a) for a in allowed)
    return Option(default, lambda v: any(_same(v, a) for a in allowed), text)


def _is_num(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:  # an integer beyond float range
        return False


def _int(default: int, low: int, high: int) -> Option:
    ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high  # noqa: E731
    return Option(default, ok, f"an integer in [{low}, {high}]")


def _num(default: float, ok: Callable[[float], bool], text: str) -> Option:
    return Option(default, lambda v: _is_num(v) and ok(v), text)


def _any(default: Any) -> Option:
    return Option(default, lambda v: True, "anything (unused by the supported options)")


def _betas_ok(v: Any) -> bool:
    return v is None or (
        isinstance(v, list) and len(v) > 0 and all(_is_num(b) and 0 <= b < 1 for b in v)
    )


_OFF = False  # an option whose only supported value is "off"
_SPACINGS = ("leading", "trailing", "linspace")
_COMMON = {
    "num_train_timesteps": _int(1000, 1, 1_000_000),
    "beta_start": _num(0.0001, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_end": _num(0.02, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_schedule": _one_of("linear", "linear", "scaled_linear", "squaredcos_cap_v2"),
    "trained_betas": Option(None, _betas_ok, "null or a list of betas in [0, 1)"),
    "prediction_type": _one_of("epsilon", "epsilon", "sample", "v_prediction"),
    "thresholding": _one_of(False, _OFF),
    "dynamic_thresholding_ratio": _any(0.995),
    "sample_max_value": _any(1.0),
    "steps_offset": _int(0, 0, 1_000_000),
    "rescale_betas_zero_snr": _one_of(False, _OFF),
}
_CLIP = {
    "clip_sample": _one_of(True, True, False),
    "clip_sample_range": _num(1.0, lambda v: v > 0, "a number > 0"),
}
_NO_SIGMA_TRICKS = {
    "use_karras_sigmas": _one_of(False, _OFF),
    "use_exponential_sigmas": _one_of(False, _OFF),
    "use_beta_sigmas": _one_of(False, _OFF),
    "use_dynamic_shifting": _one_of(False, _OFF),
    "time_shift_type": _any("exponential"),
}

#: kind -> key -> Option (diffusers' default, the check, what is supported)
SUPPORTED: dict[str, dict[str, Option]] = {
    "ddpm": {
        **_COMMON,
        **_CLIP,
        "variance_type": _one_of("fixed_small", "fixed_small", "fixed_small_log"),
        "timestep_spacing": _one_of("leading", *_SPACINGS),
    },
    "ddim": {
        **_COMMON,
        **_CLIP,
        "set_alpha_to_one": _one_of(True, True, False),
        # not a diffusers config key (a step argument): the tick needs it, deterministic only
        "eta": _num(0.0, lambda v: v == 0, "0 (deterministic DDIM)"),
        "timestep_spacing": _one_of("leading", *_SPACINGS),
    },
    "dpmsolver++": {
        **_COMMON,
        **_NO_SIGMA_TRICKS,
        "solver_order": _one_of(2, 1, 2),
        "algorithm_type": _one_of("dpmsolver++", "dpmsolver++"),
        "solver_type": _one_of("midpoint", "midpoint", "heun"),
        "lower_order_final": _one_of(True, True, False),
        "euler_at_final": _one_of(False, True, False),
        "use_lu_lambdas": _one_of(False, _OFF),
        "use_flow_sigmas": _one_of(False, _OFF),
        "flow_shift": _any(1.0),
        "final_sigmas_type": _one_of("zero", "zero", "sigma_min"),
        # diffusers writes -Infinity (its default: no clipping); a strict JSON writer (pydantic,
        # an artifact's manifest, jq) can only write null for it
        "lambda_min_clipped": Option(
            -math.inf,
            lambda v: v is None or _is_num(v) or (isinstance(v, float) and v == -math.inf),
            "a number, -Infinity or null (no clipping)",
            null=-math.inf,
        ),
        "variance_type": _one_of(None, None),
        "timestep_spacing": _one_of("linspace", *_SPACINGS),
    },
    "flow-euler": {
        **_NO_SIGMA_TRICKS,
        "num_train_timesteps": _int(1000, 1, 1_000_000),
        "shift": _num(1.0, lambda v: 0 < v <= 1000, "a number in (0, 1000]"),
        "base_shift": _any(0.5),
        "max_shift": _any(1.15),
        "base_image_seq_len": _any(256),
        "max_image_seq_len": _any(4096),
        "invert_sigmas": _one_of(False, _OFF),
        "shift_terminal": _one_of(None, None),
        "stochastic_sampling": _one_of(False, _OFF),
    },
}


def _short(value: Any) -> str:
    text = (
        json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    )
    return text if len(text) <= 40 else text[:37] + "..."


def resolve(config: Any, source: str) -> tuple[str, dict[str, Any]]:
    """``(kind, options)``: the config checked, with diffusers' defaults for missing keys.

    Raises :class:`BadInputError` naming ``source`` and the key for anything unsupported.
    """
    if not isinstance(config, dict):
        raise BadInputError(f"{source}: a scheduler config is a JSON object, not {_short(config)}")
    kinds = ", ".join(sorted(SUPPORTED))
    name, short = config.get("_class_name"), config.get("type")
    if name is not None and not (isinstance(name, str) and name in CLASSES):
        raise BadInputError(
            f"{source}: _class_name={_short(name)} is not supported; supported: "
            f"{', '.join(CLASSES)} (or type: {kinds})"
        )
    if short is not None and not (isinstance(short, str) and short in SUPPORTED):
        raise BadInputError(f"{source}: type={_short(short)} is not supported; supported: {kinds}")
    kind: str | None = CLASSES[name] if name is not None else short
    if kind is None:
        raise BadInputError(f"{source}: no _class_name or type; supported types: {kinds}")
    if short is not None and short != kind:
        raise BadInputError(
            f"{source}: type={_short(short)} contradicts _class_name={_short(name)}; supported: "
            f"type {json.dumps(kind)} or no type"
        )
    options = {}
    for key, opt in SUPPORTED[kind].items():
        value = config.get(key, opt.default)
        if value is None and opt.null is not None:
            value = opt.null
        if not opt.ok(value):
            raise BadInputError(
                f"{source}: {key}={_short(value)} is not supported by edgekit's {kind} "
                f"scheduler; supported: {opt.supported}"
            )
        options[key] = value
    betas = options.get("trained_betas")
    if betas is not None and len(betas) != options["num_train_timesteps"]:
        raise BadInputError(
            f"{source}: trained_betas has {len(betas)} betas but num_train_timesteps is "
            f"{options['num_train_timesteps']}; supported: one beta per train timestep"
        )
    return kind, options


def read_scheduler_config(path: str | Path) -> dict[str, Any]:
    """Read and check a diffusers ``scheduler_config.json`` (or the short form); the dict as given.

    Raises :class:`BadInputError` (one line naming the file, and the key where one is at fault)
    for an unreadable file, bad JSON or an unsupported option.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise BadInputError(f"{path}: cannot read the scheduler config: {reason}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInputError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    resolve(config, str(path))
    return config
