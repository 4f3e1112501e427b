"""Where a width/depth student comes from, and the check that it can replace the teacher.

* a zoo teacher: the same kind with its config scaled by ``ZooEntry.scaled`` (fixed-seed init);
* a factory teacher (``FILE.py:factory``): the factory called with ``width=`` and ``depth=``;
* any teacher: ``--student MODEL``, a PyTorch model reference of its own.

The student must have the teacher's networks with identical inputs and outputs (names, shapes,
dtypes): it then runs under the teacher's loop program unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.distill.config import DistillConfig
from edgekit.errors import InputSpecError, ModelLoadError
from edgekit.loader import TorchSource, load_factory, parse_zoo_ref
from edgekit.loader.student import load_trainable
from edgekit.spec import ModelSpec, NetworkSpec


@dataclass
class Student:
    source: TorchSource  # networks to train + the spec the artifact gets
    how: str  # one line: how it was made


def make_student(teacher: TorchSource, config: DistillConfig) -> Student:
    if config.student is not None:
        src = load_trainable(config.student)
        if not isinstance(src, TorchSource):
            raise ModelLoadError(
                f"--student {config.student}: a student must be a PyTorch model (zoo:..., "
                "FILE.py:factory, .pt2) to be trained"
            )
        check_compatible(teacher.spec, src.spec, f"--student {config.student}")
        spec = dataclasses.replace(teacher.spec, config=src.spec.config, preset=src.spec.preset)
        return Student(_with_spec(src, spec), f"given: {src.ref}")
    if teacher.ref.startswith("zoo:"):
        from edgekit.zoo import ZOO

        kind, preset = parse_zoo_ref(teacher.ref)
        entry = ZOO.get(kind)
        try:
            cfg = entry.scaled(entry.config(preset), config.width, config.depth)
        except NotImplementedError:
            raise ModelLoadError(f"zoo:{kind} has no width/depth scaling; pass --student") from None
        model = entry.build(cfg)
        name = f"{preset}-w{config.width:g}-d{config.depth:g}"
        spec = entry.spec(cfg, name)
        check_compatible(teacher.spec, spec, f"zoo:{kind} scaled student")
        src = TorchSource(f"{teacher.ref} (student)", spec, model, model.networks(), "")
        return Student(
            src, f"zoo:{kind}:{preset} scaled: width x{config.width:g}, depth x{config.depth:g}"
        )
    if ":" in teacher.ref and not teacher.ref.endswith(".pt2"):
        src = load_factory(teacher.ref, kwargs={"width": config.width, "depth": config.depth})
        check_compatible(teacher.spec, src.spec, f"{teacher.ref}(width, depth) student")
        how = f"{teacher.ref}(width={config.width:g}, depth={config.depth:g})"
        return Student(
            _with_spec(src, dataclasses.replace(teacher.spec, config=src.spec.config)), how
        )
    raise ModelLoadError(
        f"{teacher.ref}: no architecture to scale (not a zoo model or a factory); pass --student"
    )


def _with_spec(src: TorchSource, spec: ModelSpec) -> TorchSource:
    return dataclasses.replace(src, spec=spec)


def _io(net: NetworkSpec) -> list[tuple[str, str, str, tuple[Any, ...]]]:
    return [("in", t.name, t.dtype, t.shape) for t in net.inputs] + [
        ("out", t.name, t.dtype, t.shape) for t in net.outputs
    ]


def check_compatible(teacher: ModelSpec, student: ModelSpec, what: str) -> None:
    """One-line error unless ``student`` has the teacher's networks with identical io."""
    nets = {n.name: n for n in student.networks}
    for tnet in teacher.networks:
        snet = nets.get(tnet.name)
        if snet is None:
            raise InputSpecError(
                f"{what}: has no network {tnet.name!r} (it has {sorted(nets)}); the student "
                "needs the teacher's networks"
            )
        t_io, s_io = _io(tnet), _io(snet)
        if t_io == s_io:
            continue
        for a, b in zip(t_io, s_io, strict=False):
            if a != b:
                side = "input" if a[0] == "in" else "output"
                raise InputSpecError(
                    f"{what}: network {tnet.name!r} {side} {b[1]!r} is {b[2]}{list(b[3])}, "
                    f"the teacher's {a[1]!r} is {a[2]}{list(a[3])}"
                )
        raise InputSpecError(
            f"{what}: network {tnet.name!r} has {len(s_io)} inputs+outputs, the teacher {len(t_io)}"
        )


def save_weights(student: TorchSource, path: Path) -> None:
    """The student's networks in one safetensors file (``NET.param`` keys)."""
    from safetensors.torch import save_file

    state: dict[str, Any] = {}
    # a tensor shared by two networks is saved once; the state dicts stay alive until the end
    # (a freed tensor's id can be reused by the next network's, which would drop it)
    dicts = {net: module.state_dict() for net, module in student.networks.items()}
    seen: set[int] = set()
    for net, sd in dicts.items():
        for k, v in sd.items():
            if id(v) in seen:
                continue
            seen.add(id(v))
            state[f"{net}.{k}"] = v.detach().contiguous().clone()
    save_file(state, str(path))
