"""What a model reference resolves to: a PyTorch source or ONNX networks, with the spec."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, Tolerance


@dataclass
class UserModel:
    """What a user factory may return: the module and a description of its inputs, or, for a
    policy with several networks, ``networks`` (name -> module) with ``inputs`` per network
    (name -> list of TensorSpec / NetworkSpec) and the ``tick`` that runs them (a declared
    tick: see :mod:`edgekit.loop.blocks`)."""

    module: Any = None  # torch.nn.Module
    inputs: Any = None  # ModelSpec | NetworkSpec | list[TensorSpec] | str | Path (an .npz)
    hz: float = 50.0
    networks: dict[str, Any] | None = None
    tick: dict[str, Any] | str | None = None  # a declared tick, or "FILE.py:Class" (a plugin)
    tick_params: dict[str, Any] | None = None  # a plugin program's params


@dataclass
class TorchSource:
    """A PyTorch model with its spec: zoo models, factories, .pt2 archives."""

    ref: str
    spec: ModelSpec
    module: Any  # torch.nn.Module (container)
    networks: dict[str, Any]  # network name -> nn.Module
    sha256: str
    weights: str | None = None
    sample_inputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass
class OnnxSource:
    """One or more ONNX networks with their spec: an ONNX file or an artifact folder."""

    ref: str
    spec: ModelSpec
    files: dict[str, Path]
    sha256: str
    origin: dict[str, Any] = field(default_factory=dict)  # the artifact's own source, if any
    sample_inputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)  # the artifact's manifest checks


Source = TorchSource | OnnxSource


def is_factory_ref(ref: str) -> bool:
    """``FILE.py:fn`` or ``pkg.module:fn``: code (not a zoo name or an existing file)."""
    return ":" in ref and not ref.startswith("zoo:") and not Path(ref).exists()


def recorded_ref(ref: str | None) -> str | None:
    """``ref`` as a manifest keeps it: file paths (a factory's ``FILE.py`` included) made
    absolute, so that a later command run from another folder finds the same model."""
    if ref is None or ref.startswith("zoo:"):
        return ref
    if Path(ref).exists():
        return str(Path(ref).resolve())
    target, sep, attr = ref.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).resolve()}:{attr}"
    return ref


def source_info(source: Source) -> dict[str, Any]:
    """What a manifest records of the model a stage started from (reference, hash, weights)."""
    if isinstance(source, TorchSource):
        return {
            "ref": recorded_ref(source.ref),
            "sha256": source.sha256,
            "weights": recorded_ref(source.weights),
            "type": "torch",
        }
    return {"ref": recorded_ref(source.ref), "sha256": source.sha256, "type": "onnx",
            "origin": source.origin}  # fmt: skip


def state_sha256(module: Any) -> str:
    """A content hash of a module's weights (stable across processes)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def single_call_spec(
    net: NetworkSpec, kind: str, hz: float = 50.0, config: Any = None
) -> ModelSpec:
    program = ProgramSpec(
        "single-call",
        {"network": net.name, "inputs": [t.to_dict() for t in net.inputs], "dims": {}},
    )
    return ModelSpec(
        kind=kind,
        preset="-",
        networks=(net,),
        program=program,
        programs={"single": program},
        hz=hz,
        tolerance=Tolerance(atol=1e-4, rtol=1e-3),
        config=config or {},
    )
