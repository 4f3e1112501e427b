"""An earlier ``edgekit distill`` output as a PyTorch model again, so distillations chain.

A distilled zoo student ships its weights (``student.safetensors``, its sha256 in the
manifest's ``checks.distill.weights``) next to its ONNX networks, and the manifest records its
kind and the config it was built from. :func:`torch_from_artifact` rebuilds that architecture
(fixed-seed init), loads the weights (safetensors: data, no code) and returns a
:class:`TorchSource` with the manifest's spec (its loop programs as distilled). So a width/depth
student can be step-distilled in turn::

    edgekit distill zoo:vla-flow:reacher --width 0.5 --depth 0.5 ... --out narrow
    edgekit distill narrow --denoise-steps 1 ... --out narrow-1step
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edgekit.artifacts import load_artifact, sha256_file
from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loader.sources import TorchSource, state_sha256
from edgekit.validate import finite_tensors

WEIGHTS = "student.safetensors"


def weights_entry(path: Path) -> dict[str, str]:
    """The manifest's record of a student's weights file (``checks.distill.weights``)."""
    return {"file": path.name, "sha256": sha256_file(path)}


def torch_from_artifact(path: str | Path) -> TorchSource:
    """The distilled zoo student in the artifact folder ``path``, as a trainable model."""
    path = Path(path)
    art = load_artifact(path)
    m = art.manifest
    distill = m.checks.get("distill")
    entry = distill.get("weights") if isinstance(distill, dict) else None
    if m.stage != "distill" or not isinstance(entry, dict):
        raise ModelLoadError(
            f"{path}: an artifact of `edgekit {m.stage}` has ONNX networks only; a PyTorch "
            "model to distil is a zoo model, a factory, a .pt2 or an `edgekit distill` output"
        )
    wfile = path / str(entry.get("file", ""))
    if (
        wfile.parent.resolve() != path.resolve()
        or not wfile.is_file()
        or sha256_file(wfile) != entry.get("sha256")
    ):
        raise BadInputError(
            f"{path}/edgekit.json: checks.distill.weights: {entry.get('file')} is missing or "
            "does not match its sha256; distil again"
        )
    from edgekit.zoo import ZOO

    try:
        zoo = ZOO.get(m.spec.kind)
    except BadInputError:
        raise ModelLoadError(
            f"{path}: a distilled {m.spec.kind!r} model is not a zoo kind edgekit can rebuild; "
            "distil from the original model with --student"
        ) from None
    cfg = _config(zoo, m.spec.config, path)
    model = zoo.build(cfg)
    _load_weights(model.networks(), wfile)
    return TorchSource(str(path), m.spec, model, model.networks(), state_sha256(model), str(wfile))


def _config(zoo: Any, d: dict[str, Any] | None, path: Path) -> Any:
    base = next(iter(zoo.presets.values()))
    names = {f.name for f in dataclasses.fields(base)}
    if not isinstance(d, dict) or set(d) != names:
        raise BadInputError(
            f"{path}/edgekit.json: model.config does not describe a zoo:{zoo.kind} model "
            "(fields differ from this edgekit's); distil again"
        )
    try:
        return dataclasses.replace(
            base, **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        )
    except (TypeError, ValueError) as e:
        raise BadInputError(f"{path}/edgekit.json: model.config: {e}") from None


def _load_weights(networks: dict[str, Any], path: Path) -> None:
    """Load ``NET.param`` keys as :func:`edgekit.distill.students.save_weights` wrote them (a
    tensor shared by two networks under the first one's name)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({e})") from None
    finite_tensors(state, str(path))
    seen: set[int] = set()
    targets = {}
    for net, module in networks.items():
        for k, v in module.state_dict(keep_vars=True).items():
            if id(v) not in seen:
                seen.add(id(v))
                targets[f"{net}.{k}"] = v
    missing, unexpected = sorted(set(targets) - set(state)), sorted(set(state) - set(targets))
    bad = sorted(k for k in set(targets) & set(state) if targets[k].shape != state[k].shape)
    if missing or unexpected or bad:
        what = (missing and "missing") or (unexpected and "unexpected") or "wrong shape"
        keys = missing or unexpected or bad
        raise ModelLoadError(
            f"{path}: does not fit the architecture its manifest records ({what}: {keys[:3]})"
        )
    import torch

    with torch.no_grad():
        for k, v in targets.items():
            v.copy_(state[k])


def load_trainable(model: Any) -> Any:
    """A model reference (or an already loaded source) as a source, with an earlier
    ``edgekit distill`` output as its PyTorch model."""
    from edgekit.artifacts import is_artifact
    from edgekit.loader import load

    src = load(model) if isinstance(model, str) else model
    if not isinstance(src, TorchSource) and is_artifact(Path(src.ref)):
        return torch_from_artifact(src.ref)
    return src
