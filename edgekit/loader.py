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

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifacts import Artifact, is_artifact, load_artifact, sha256_file
from edgekit.errors import BadInputError, InputSpecError, ModelLoadError
from edgekit.onnxfile import network_spec_from_onnx, read_onnx
from edgekit.pt2file import read_pt2
from edgekit.spec import ModelSpec, NetworkSpec, ProgramSpec, TensorSpec, Tolerance
from edgekit.usercode import UserCode, check_timeout, import_factory
from edgekit.validate import finite_tensors, gather_bounds, int_ranges

PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


@dataclass
class UserModel:
    """What a user factory may return: the module and a description of its inputs."""

    module: Any  # torch.nn.Module
    inputs: Any  # ModelSpec | NetworkSpec | list[TensorSpec] | str | Path (an .npz)
    hz: float = 50.0


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


def source_info(source: Source) -> dict[str, Any]:
    """What a manifest records of the model a stage started from (reference, hash, weights)."""
    if isinstance(source, TorchSource):
        return {
            "ref": source.ref,
            "sha256": source.sha256,
            "weights": source.weights,
            "type": "torch",
        }
    return {"ref": source.ref, "sha256": source.sha256, "type": "onnx", "origin": source.origin}


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
    if ref.startswith("zoo:"):
        return _load_zoo(ref, weights)
    if weights is not None:
        raise BadInputError(f"--weights only applies to zoo models, not {ref!r}")
    path = Path(ref)
    if path.is_dir():
        if is_artifact(path):
            return _from_artifact(load_artifact(path))
        raise ModelLoadError(f"{ref}: folder is not an edgekit artifact (no edgekit.json)")
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix == ".onnx":
            return _load_onnx(path, inputs)
        if suffix == ".pt2":
            return _load_pt2(path, inputs, allow_pickle, timeout)
        if suffix in PICKLE_SUFFIXES:
            return _load_pickle(path, allow_pickle, inputs, timeout)
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
        return _load_factory(ref, inputs, timeout=timeout)
    raise ModelLoadError(f"{ref}: no such file or folder")


# --- zoo ------------------------------------------------------------------------------------


def parse_zoo_ref(ref: str) -> tuple[str, str]:
    parts = ref.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ModelLoadError(f"{ref!r}: expected zoo:NAME or zoo:NAME:PRESET")
    return parts[1], parts[2] if len(parts) == 3 else "default"


SHIPPED_WEIGHTS = Path(__file__).parent / "zoo" / "weights"


def _load_zoo(ref: str, weights: str | Path | None, shipped: bool = True) -> TorchSource:
    from edgekit.zoo import ZOO

    name, preset = parse_zoo_ref(ref)
    try:
        entry = ZOO.get(name)
    except BadInputError as e:
        raise ModelLoadError(f"{ref}: {e}") from None
    cfg = entry.config(preset)
    model = entry.build(cfg)
    trained = SHIPPED_WEIGHTS / f"{entry.kind}-{preset}.safetensors"
    if weights is None and shipped and trained.is_file():  # a preset trained and shipped
        weights = trained
    if weights is not None:
        _load_safetensors(model, Path(weights), ref)
    spec = entry.spec(cfg, preset)
    canonical = f"zoo:{entry.kind}:{preset}"
    return TorchSource(
        canonical,
        spec,
        model,
        model.networks(),
        state_sha256(model),
        str(weights) if weights else None,
    )


def _load_safetensors(model: Any, path: Path, ref: str) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelLoadError(f"--weights {path}: no such file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"--weights {path}: not a readable safetensors file ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        detail = "; ".join(
            f"{what} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", bad),
            )
            if keys
        )
        raise ModelLoadError(f"--weights {path}: does not fit {ref}: {detail}")
    finite_tensors(state, f"--weights {path}")
    model.load_state_dict(state)


def state_sha256(module: Any) -> str:
    """A content hash of a module's weights (stable across processes)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


# --- artifacts and ONNX files ----------------------------------------------------------------


def _from_artifact(art: Artifact) -> OnnxSource:
    if art.manifest.format == "qnn":  # the QDQ networks the context binaries came from
        qdq = art.manifest.checks.get("qnn", {}).get("qdq_files")
        if not isinstance(qdq, dict) or not all(
            isinstance(e, dict) and {"file", "sha256"} <= set(e) for e in qdq.values()
        ):  # checks are free-form in the schema: this one part is read, so check it here
            raise BadInputError(
                f"{art.path}/edgekit.json: checks.qnn.qdq_files: missing or damaged"
            )
        files = {name: art.path / str(e["file"]) for name, e in qdq.items()}
        for name, e in qdq.items():
            ok = files[name].is_file() and files[name].resolve().is_relative_to(art.path.resolve())
            if not ok or sha256_file(files[name]) != e["sha256"]:
                raise BadInputError(
                    f"{art.path}/edgekit.json: checks.qnn.qdq_files.{name}: {e['file']} is "
                    "missing or does not match its sha256; re-export"
                )
        digest = hashlib.sha256("".join(e["sha256"] for e in qdq.values()).encode())
        origin = {**art.manifest.source, "qnn_contexts": {n: str(art.file(n)) for n in qdq}}
        return OnnxSource(str(art.path), art.manifest.spec, files, digest.hexdigest(), origin)
    if art.manifest.format not in ("onnx", "tensorrt"):  # tensorrt: TensorRT-ready ONNX files
        raise ModelLoadError(f"{art.path}: a {art.manifest.format!r} artifact has no ONNX networks")
    files = {name: art.file(name) for name in art.manifest.files}
    digest = hashlib.sha256("".join(e["sha256"] for e in art.manifest.files.values()).encode())
    return OnnxSource(
        str(art.path),
        art.manifest.spec,
        files,
        digest.hexdigest(),
        art.manifest.source,
        checks=art.manifest.checks,
    )


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


def _load_onnx(path: Path, inputs: str | Path | None) -> OnnxSource:
    model = read_onnx(path)
    net = network_spec_from_onnx(model, "model")
    spec = single_call_spec(net, "onnx")
    src = OnnxSource(str(path), spec, {"model": path}, sha256_file(path))
    if inputs is not None:
        samples = read_sample_npz(Path(inputs))
        net.check_inputs(samples, f"--inputs {inputs}")
        bounds = {k: (0, v) for k, v in gather_bounds(model).items()}
        int_ranges(samples, bounds, f"--inputs {inputs}")
        src.sample_inputs[net.name] = samples
    return src


# --- PyTorch: factories, torch.export archives, pickles ---------------------------------------


def load_factory(
    ref: str, inputs: str | Path | None = None, kwargs: dict[str, Any] | None = None
) -> TorchSource:
    """Call a ``FILE.py:factory`` / ``module:factory`` with ``kwargs`` (e.g. a distillation
    student's ``width`` and ``depth``); the factory must accept every keyword given."""
    import inspect

    if kwargs:
        fn = import_factory(ref)
        params = inspect.signature(fn).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        missing = [k for k in kwargs if k not in params and not takes_all]
        if missing:
            raise ModelLoadError(
                f"{ref}: factory takes no {', '.join(missing)} argument(s); add them to scale "
                "the model, or pass a --student model"
            )
    return _load_factory(ref, inputs, kwargs)


def _load_factory(
    ref: str,
    inputs: str | Path | None,
    kwargs: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> TorchSource:
    guard = UserCode(ref, timeout)
    fn = import_factory(ref, guard)
    try:
        with guard.run("the factory"):
            result = fn(**(kwargs or {}))
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"{ref}: factory raised {type(e).__name__}: {e}") from e
    hz = 50.0
    if isinstance(result, UserModel):
        module, described, hz = result.module, result.inputs, result.hz
    elif isinstance(result, tuple) and len(result) == 2:
        module, described = result
    else:
        module, described = result, None
    if inputs is not None:
        described = inputs
    return _torch_source(ref, module, described, hz, "factory", guard)


def _torch_source(
    ref: str, module: Any, described: Any, hz: float, kind: str, guard: UserCode | None = None
) -> TorchSource:
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ModelLoadError(
            f"{ref}: expected an nn.Module, got {type(module).__name__}; return the module, "
            "or (module, inputs)"
        )
    with contextlib.suppress(NotImplementedError):  # torch.export modules: always eval mode
        module.eval()
    if isinstance(described, ModelSpec):
        nets = getattr(module, "networks", None)
        networks = nets() if callable(nets) else {described.networks[0].name: module}
        return TorchSource(ref, described, module, networks, state_sha256(module))
    if described is None:
        raise InputSpecError(
            f"{ref}: edgekit needs the model's inputs; return (module, inputs) from the factory "
            "or pass --inputs SAMPLES.npz"
        )
    net, samples = _describe_inputs(ref, module, described, guard or UserCode(ref))
    spec = single_call_spec(net, kind, hz)
    src = TorchSource(ref, spec, module, {net.name: module}, state_sha256(module))
    if samples is not None:
        src.sample_inputs[net.name] = samples
    return src


def _describe_inputs(
    ref: str, module: Any, described: Any, guard: UserCode
) -> tuple[NetworkSpec, dict[str, np.ndarray] | None]:
    """Build a NetworkSpec (outputs found by running the module once) from user inputs."""
    import torch

    samples: dict[str, np.ndarray] | None = None
    if isinstance(described, NetworkSpec):
        return described, None
    if isinstance(described, str | Path):
        samples = read_sample_npz(Path(described))
        ins = tuple(
            TensorSpec(k, ("batch", *v.shape[1:]), v.dtype.name) for k, v in samples.items()
        )
        feeds = samples
    elif isinstance(described, list | tuple) and all(isinstance(t, TensorSpec) for t in described):
        ins = tuple(described)
        rng = np.random.default_rng(0)
        feeds = {t.name: t.sample(rng, {"batch": 2}) for t in ins}
    else:
        raise InputSpecError(
            f"{ref}: inputs must be a ModelSpec, NetworkSpec, list of TensorSpec or an .npz path, "
            f"got {type(described).__name__}"
        )
    try:
        with torch.inference_mode(), guard.run("the model's forward"):
            out = module(*[torch.from_numpy(feeds[t.name]) for t in ins])
    except ModelLoadError:
        raise
    except Exception as e:
        raise InputSpecError(
            f"{ref}: the model failed on inputs {[t.name for t in ins]}: {type(e).__name__}: {e}"
        ) from e
    outs = out if isinstance(out, tuple | list) else (out,)
    names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
    out_specs = tuple(
        TensorSpec(n, ("batch", *o.shape[1:]), str(o.dtype).removeprefix("torch."))
        for n, o in zip(names, outs, strict=True)
    )
    return NetworkSpec("model", ins, out_specs, {"batch": 2}), samples


def read_sample_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an .npz of sample inputs (pickled object arrays are refused)."""
    if not path.is_file():
        raise InputSpecError(f"--inputs {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise InputSpecError(f"--inputs {path}: not a readable .npz ({e})") from None
    if not arrays:
        raise InputSpecError(f"--inputs {path}: holds no arrays")
    for k, v in arrays.items():
        if v.ndim == 0:
            raise InputSpecError(f"--inputs {path}: array {k!r} has no batch axis")
    return arrays


def _load_pt2(
    path: Path, inputs: str | Path | None, allow_pickle: bool, timeout: float | None
) -> TorchSource:
    guard = UserCode(str(path), timeout)  # a trusted archive's pickles are user code
    module, specs = read_pt2(path, allow_pickle, guard)
    described: Any = inputs if inputs is not None else specs
    return _torch_source(str(path), module, described, 50.0, "torch.export", guard)


def _load_pickle(
    path: Path, allow_pickle: bool, inputs: str | Path | None, timeout: float | None
) -> TorchSource:
    if not allow_pickle:
        raise ModelLoadError(
            f"{path}: pickle checkpoints can run arbitrary code when loaded; refusing. Export it "
            "with torch.export (.pt2) or ONNX, or pass --allow-pickle if you trust this file"
        )
    import torch

    guard = UserCode(str(path), timeout)
    try:
        with guard.run("unpickling"):
            obj = torch.load(str(path), weights_only=False, map_location="cpu")
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"{path}: could not unpickle ({type(e).__name__}: {e})") from None
    return _torch_source(str(path), obj, inputs, 50.0, "pickle", guard)
