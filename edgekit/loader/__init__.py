"""Resolve a model reference to something edgekit can export or bench.

One reference form everywhere:

* ``zoo:NAME[:PRESET]``            a built-in stack model (``--weights FILE.safetensors`` to load
                                   trained weights)
* ``path/to/file.py:factory``      a factory in a Python file
* ``package.module:factory``       a factory in an importable module
* ``model.onnx``                   an ONNX file (external-data paths are checked)
* ``model.pt2``                    a ``torch.export`` archive
* ``path/to/artifact/``            a folder written by an earlier edgekit step
* ``model.pt`` / ``.pth``          a pickle checkpoint: refused unless ``allow_pickle=True``

Nothing in a model file runs unless ``allow_pickle=True`` (see :mod:`edgekit.pt2file` for what a
``.pt2`` may hide). User code (a factory's module, the factory, the sample forward) runs under
:class:`edgekit.usercode.UserCode`: it cannot end the process, and ``timeout`` bounds it.

A factory returns an ``nn.Module`` plus a description of its inputs: either a tuple
``(module, inputs)`` or a :class:`UserModel`. ``inputs`` is a :class:`ModelSpec`, a
:class:`NetworkSpec`, a list of :class:`TensorSpec`, or the path of an ``.npz`` file of sample
inputs (array name = input name, first axis = batch). ``--inputs FILE.npz`` supplies it for a
factory that returns a bare module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit import progress
from edgekit.artifacts import is_artifact, load_artifact
from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loader.card import CARD_SUFFIXES
from edgekit.loader.onnx import from_artifact, load_onnx
from edgekit.loader.sources import (
    OnnxSource,
    Source,
    TorchSource,
    UserModel,
    is_factory_ref,
    recorded_ref,
    single_call_spec,
    source_info,
    state_sha256,
)
from edgekit.loader.torch_files import load_factory, load_factory_ref, load_pickle, load_pt2
from edgekit.loader.zoo import SHIPPED_WEIGHTS, load_zoo, parse_zoo_ref
from edgekit.models import check_networks
from edgekit.usercode import check_timeout

__all__ = [
    "SHIPPED_WEIGHTS",
    "OnnxSource",
    "Source",
    "TorchSource",
    "UserModel",
    "load",
    "load_factory",
    "load_origin",
    "load_zoo",
    "parse_zoo_ref",
    "single_call_spec",
    "source_info",
    "state_sha256",
]


PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


def load(
    ref: str,
    *,
    weights: str | Path | None = None,
    allow_pickle: bool = False,
    inputs: str | Path | None = None,
    timeout: float | None = None,
) -> Source:
    """Resolve ``ref`` (see module docstring) to a :class:`TorchSource` or :class:`OnnxSource`.

    Args:
        ref: the model reference.
        weights: trained weights (.safetensors) for a zoo model.
        allow_pickle: trust a file that runs code when loaded (a pickle checkpoint, or a .pt2
            with pickled or evaluated parts); refused otherwise.
        inputs: sample inputs (.npz) for a factory or .pt2 model.
        timeout: seconds that a factory (import, call, sample forward) or an opted-in
            unpickling may take before a :class:`ModelLoadError`; None: no limit.
    """
    ref = str(ref)
    check_timeout(timeout)
    with progress.task(f"loading {ref}"):
        source = _load(ref, weights, allow_pickle, inputs, timeout)
    check_networks(source.spec, ref)  # the programs can wire the networks' io together
    if is_factory_ref(ref):
        from edgekit.plugins import trust_factory

        trust_factory(str(recorded_ref(ref)))
    return source


def load_origin(info: dict[str, Any], what: str) -> Source:
    """The model an artifact's manifest says it was made from (its ``source``): a zoo model or
    a model file as :func:`load` loads them; a factory (code) only if the user named it in this
    process or passed ``--allow-plugin`` (``what`` names the use in the refusal)."""
    from edgekit.plugins import check_named_code

    ref = str(info.get("ref", ""))
    if is_factory_ref(ref):
        check_named_code(ref, what)
    return load(ref, weights=info.get("weights"))


def _load(
    ref: str,
    weights: str | Path | None,
    allow_pickle: bool,
    inputs: str | Path | None,
    timeout: float | None,
) -> Source:
    if ref.startswith("zoo:"):
        return load_zoo(ref, weights)
    if weights is not None:
        raise BadInputError(f"--weights only applies to zoo models, not {ref!r}")
    path = Path(ref)
    if path.is_dir():
        if is_artifact(path):
            return from_artifact(load_artifact(path))
        raise ModelLoadError(f"{ref}: folder is not an edgekit artifact (no edgekit.json)")
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".onnx":
            return load_onnx(path, inputs)
        if suffix == ".pt2":
            return load_pt2(path, inputs, allow_pickle, timeout)
        if suffix in CARD_SUFFIXES:
            from edgekit.loader.card import load_card

            return load_card(path, allow_pickle, timeout)
        if suffix in PICKLE_SUFFIXES:
            return load_pickle(path, allow_pickle, inputs, timeout)
        if suffix == ".safetensors":
            raise ModelLoadError(
                f"{ref}: a safetensors file holds weights, not an architecture; "
                f"use e.g. `zoo:diffusion-policy --weights {ref}`"
            )
        raise ModelLoadError(
            f"{ref}: unknown model file type {suffix!r}; expected .onnx, .pt2, an artifact folder, "
            "zoo:NAME or FILE.py:factory"
        )
    if ":" in ref:
        return load_factory_ref(ref, inputs, timeout=timeout)
    raise ModelLoadError(f"{ref}: no such file or folder")
