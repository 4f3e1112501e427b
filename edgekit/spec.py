"""The export and loop contract of a stack model, kept apart from its modelling code.

A :class:`ModelSpec` says which networks a model has (named inputs and outputs with shapes,
dtypes and dynamic axes), how to make sample inputs for them, how close an export must match,
and which control-loop program runs them each tick. It is plain data: it goes into every
artifact manifest and comes back out of it, and it imports no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgekit.errors import InputSpecError

Dim = int | str  # an int is a fixed size; a str names a dynamic axis ("batch")

# How sample values are drawn: floats default to "normal", ints to "int" (in [low, high)),
# bools to "mask" (a valid prefix then padding, never all padding).
SAMPLERS = ("normal", "uniform", "int", "mask", "image")

# Network names become file names (NET.onnx, NET.engine) and PyTorch module names: no path
# separators, no dots, nothing a shell or a file system reads specially.
NETWORK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_network_name(name: object, where: str = "network name") -> str:
    """``name`` if it may name a network, else a one-line :class:`InputSpecError`."""
    if not isinstance(name, str) or not NETWORK_NAME.fullmatch(name):
        raise InputSpecError(
            f"{where} {name!r}: a network name is 1-64 letters, digits, '_' or '-' (it becomes "
            "a file name); rename it"
        )
    return name


def check_tensor_name(name: object, where: str) -> str:
    """``name`` if it may name a tensor (any text of 1-256 characters without control
    characters: ONNX names such as ``input:0`` or ``past.0.key`` are fine)."""
    if not isinstance(name, str) or not 0 < len(name) <= 256 or _CONTROL.search(name):
        raise InputSpecError(
            f"{where}: tensor name {name!r}: 1-256 characters, no control characters (newlines, "
            "tabs); rename it"
        )
    return name


# ``low``/``high`` not given. Replaced in ``__post_init__`` (0.0 / 1.0), so it never reaches a
# manifest; an "int" sampler has no sensible default ``high``, so there leaving it out is an error.
_UNSET = math.nan


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a network or of a robot observation.

    ``low``/``high`` bound the "uniform" and "int" samplers (``[low, high)``); they default to
    0.0 / 1.0, except that an "int" sampler (the default for integer dtypes) needs an explicit
    ``high`` (token ids: ``high`` is the vocabulary size), or only ``low`` would be drawn.
    """

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"
    sampler: str = ""
    low: float = _UNSET
    high: float = _UNSET

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))
        if not self.sampler:
            kind = np.dtype(self.dtype).kind
            default = {"f": "normal", "i": "int", "u": "int", "b": "mask"}.get(kind, "normal")
            object.__setattr__(self, "sampler", default)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"{self.name}: sampler {self.sampler!r} not in {SAMPLERS}")
        if self.sampler == "int" and math.isnan(self.high):
            example = f"TensorSpec({self.name!r}, {self.shape}, {self.dtype!r}, low=0, high=32000)"
            raise InputSpecError(
                f"input {self.name!r} ({self.dtype}) is sampled as integers but has no value "
                f"range; give low/high (high exclusive, e.g. the vocabulary size): {example}"
            )
        object.__setattr__(self, "low", 0.0 if math.isnan(self.low) else self.low)
        object.__setattr__(self, "high", 1.0 if math.isnan(self.high) else self.high)
        if self.sampler == "int" and not int(self.high) > int(self.low):
            raise InputSpecError(
                f"input {self.name!r}: integer range [{self.low:g}, {self.high:g}) is empty; "
                "give high > low (high is exclusive)"
            )

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def concrete_shape(self, dims: dict[str, int]) -> tuple[int, ...]:
        out = []
        for d in self.shape:
            if isinstance(d, str):
                if d not in dims:
                    raise InputSpecError(f"{self.name}: no size given for dynamic axis {d!r}")
                out.append(int(dims[d]))
            else:
                out.append(int(d))
        return tuple(out)

    def sample(self, rng: np.random.Generator, dims: dict[str, int]) -> np.ndarray:
        """Draw a sample tensor that is valid for this input (right dtype and value range)."""
        shape = self.concrete_shape(dims)
        if self.sampler == "normal":
            return rng.standard_normal(shape).astype(self.dtype)
        if self.sampler == "uniform":
            return rng.uniform(self.low, self.high, shape).astype(self.dtype)
        if self.sampler == "int":
            return rng.integers(int(self.low), int(self.high), shape).astype(self.dtype)
        if self.sampler == "image":
            return rng.integers(0, 256, shape).astype(self.dtype)
        # mask: True marks padding; keep at least the first position of the last axis valid
        valid = rng.integers(1, shape[-1] + 1, shape[:-1]) if shape else np.array(1)
        mask = np.arange(shape[-1]) >= np.expand_dims(valid, -1)
        return mask.astype(self.dtype)

    def check(self, value: np.ndarray, where: str) -> None:
        """Raise a one-line error if ``value`` does not fit this spec."""
        if np.dtype(value.dtype) != np.dtype(self.dtype):
            raise InputSpecError(
                f"{where}: input {self.name!r} has dtype {value.dtype}, expected {self.dtype}"
            )
        if value.ndim != len(self.shape) or any(
            isinstance(d, int) and d != s for d, s in zip(self.shape, value.shape, strict=False)
        ):
            raise InputSpecError(
                f"{where}: input {self.name!r} has shape {list(value.shape)}, "
                f"expected {list(self.shape)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(**{**d, "shape": tuple(d["shape"])})


@dataclass(frozen=True)
class NetworkSpec:
    """One exported network: its inputs, outputs and the sizes used for sample inputs."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sample_dims: dict[str, int] = field(default_factory=lambda: {"batch": 2})

    def __post_init__(self) -> None:
        check_network_name(self.name)
        for t in (*self.inputs, *self.outputs):
            check_tensor_name(t.name, f"network {self.name!r}")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def sample_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {t.name: t.sample(rng, self.sample_dims) for t in self.inputs}

    def check_inputs(self, feeds: dict[str, np.ndarray], where: str) -> None:
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise InputSpecError(
                f"{where}: network {self.name!r} inputs do not match; "
                f"missing {missing}, unexpected {extra}, expected {self.input_names}"
            )
        for t in self.inputs:
            t.check(feeds[t.name], where)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "sample_dims": dict(self.sample_dims),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkSpec:
        return cls(
            name=d["name"],
            inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
            sample_dims=dict(d.get("sample_dims", {"batch": 2})),
        )


@dataclass(frozen=True)
class Tolerance:
    """Parity tolerance: max-abs error <= atol + rtol * max|reference|, and cosine >= min_cosine."""

    atol: float = 1e-4
    rtol: float = 1e-3
    min_cosine: float = 0.9999

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ProgramSpec:
    """Which registered control-loop program runs a model's networks, and its parameters.

    ``hz`` is the program's own loop rate when it differs from the model's (a world model acts
    at 50 Hz but plans at 10 Hz); None means the model's rate.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    hz: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "hz": self.hz}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgramSpec:
        return cls(name=d["name"], params=dict(d.get("params", {})), hz=d.get("hz"))


@dataclass(frozen=True)
class ModelSpec:
    """Everything edgekit needs to export, check and bench a model, minus its weights."""

    kind: str
    preset: str
    networks: tuple[NetworkSpec, ...]
    program: ProgramSpec
    hz: float
    tolerance: Tolerance = Tolerance()
    tick_tolerance: Tolerance = Tolerance(atol=1e-3, rtol=1e-2, min_cosine=0.999)
    config: dict[str, Any] = field(default_factory=dict)
    programs: dict[str, ProgramSpec] = field(default_factory=dict)

    def network(self, name: str) -> NetworkSpec:
        for n in self.networks:
            if n.name == name:
                return n
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "preset": self.preset,
            "hz": self.hz,
            "config": self.config,
            "tolerance": self.tolerance.to_dict(),
            "tick_tolerance": self.tick_tolerance.to_dict(),
            "networks": [n.to_dict() for n in self.networks],
            "program": self.program.to_dict(),
            "programs": {k: p.to_dict() for k, p in self.programs.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            kind=d["kind"],
            preset=d["preset"],
            networks=tuple(NetworkSpec.from_dict(n) for n in d["networks"]),
            program=ProgramSpec.from_dict(d["program"]),
            hz=float(d["hz"]),
            tolerance=Tolerance(**d["tolerance"]),
            tick_tolerance=Tolerance(**d["tick_tolerance"]),
            config=dict(d.get("config", {})),
            programs={k: ProgramSpec.from_dict(p) for k, p in d.get("programs", {}).items()},
        )
