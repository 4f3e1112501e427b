"""User PyTorch code and files: factories (``file.py:fn``, ``pkg.module:fn``), ``.pt2`` archives,
pickle checkpoints (only with ``allow_pickle``)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputSpecError, ModelLoadError
from edgekit.loader.sources import TorchSource, UserModel, single_call_spec, state_sha256
from edgekit.pt2file import read_pt2
from edgekit.spec import (
    Dim,
    ModelSpec,
    NetworkSpec,
    ProgramSpec,
    TensorSpec,
    Tolerance,
    check_network_name,
    check_tensor_name,
)
from edgekit.usercode import UserCode, import_factory

USER_KIND = "user"  # the kind of a user's networks run by a declared tick or plugin


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
    return load_factory_ref(ref, inputs, kwargs)


def load_factory_ref(
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
    except InputSpecError as e:  # e.g. a TensorSpec declared without the range it needs
        raise InputSpecError(f"{ref}: {e}") from None
    except Exception as e:
        raise ModelLoadError(f"{ref}: factory raised {type(e).__name__}: {e}") from e
    hz = 50.0
    if isinstance(result, UserModel) and (result.networks or result.tick):
        return declared_source(ref, result, guard)
    if isinstance(result, UserModel):
        module, described, hz = result.module, result.inputs, result.hz
    elif isinstance(result, tuple) and len(result) == 2:
        module, described = result
    else:
        module, described = result, None
    if inputs is not None:
        described = inputs
    return torch_source(ref, module, described, hz, "factory", guard)


def torch_source(
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


def declared_source(ref: str, user: UserModel, guard: UserCode) -> TorchSource:
    """A user's policy with its networks and declared tick: one NetworkSpec per network (its
    outputs found by running it once), the tick checked against them, stored as the ``tick``
    program so that every artifact carries it."""
    from torch import nn

    nets = user.networks or {"model": user.module}
    described = user.inputs if isinstance(user.inputs, dict) else {"model": user.inputs}
    specs, samples = {}, {}
    for name, module in nets.items():
        check_network_name(name, f"{ref}: network")
        if not isinstance(module, nn.Module):
            raise ModelLoadError(f"{ref}: network {name!r} is a {type(module).__name__}, "
                                 "not an nn.Module")  # fmt: skip
        if name not in described:
            raise InputSpecError(f"{ref}: no inputs given for network {name!r} (UserModel.inputs)")
        with contextlib.suppress(NotImplementedError):
            module.eval()
        net, sample = _describe_inputs(ref, module, described[name], guard)
        specs[name] = NetworkSpec(name, net.inputs, net.outputs, net.sample_dims)
        if sample is not None:
            samples[name] = sample
    if user.tick is None:
        raise InputSpecError(f"{ref}: several networks need a declared tick (UserModel.tick)")
    spec = declared_spec(ref, user.tick, user.tick_params, specs, user.hz, guard)
    container = nn.ModuleDict(nets)
    src = TorchSource(ref, spec, container, dict(nets), state_sha256(container))
    src.sample_inputs.update(samples)
    return src


def declared_spec(
    ref: str,
    tick: dict[str, Any] | str,
    tick_params: dict[str, Any] | None,
    specs: dict[str, NetworkSpec],
    hz: float,
    guard: UserCode | None = None,
    base: Path | None = None,
) -> ModelSpec:
    """The ModelSpec of a user's networks run by a declared tick (or a plugin program)."""
    from edgekit.loop.blocks import declare_tick

    if isinstance(tick, str):
        program = _plugin_program(ref, tick, tick_params or {}, specs, guard, base)
    else:
        decl = declare_tick(tick, specs, where=f"{ref}: tick")
        params = decl.model_dump(mode="json", exclude_none=True)
        steps = {b.get("num_inference_steps") for b in params["blocks"] if b["block"] == "denoise"}
        if len(steps) == 1:
            params["num_inference_steps"] = steps.pop()
        program = ProgramSpec("tick", params)
    return ModelSpec(
        kind=USER_KIND, preset="-", networks=tuple(specs.values()), program=program,
        programs={"tick": program}, hz=hz, tolerance=Tolerance(atol=1e-4, rtol=1e-3),
    )  # fmt: skip


def _plugin_program(
    ref: str,
    plugin: str,
    params: dict[str, Any],
    specs: dict[str, NetworkSpec],
    guard: UserCode | None,
    base: Path | None = None,
) -> ProgramSpec:
    """A user's own LoopProgram class as the tick: it may only call the model's networks."""
    from edgekit.plugins import PLUGIN, declare_plugin

    if base is None and ref.rpartition(":")[0].endswith(".py"):
        base = Path(ref.rpartition(":")[0]).parent
    if base is not None and not Path(plugin.rpartition(":")[0]).is_absolute():
        plugin = f"{base / plugin.rpartition(':')[0]}:{plugin.rpartition(':')[2]}"
    stored = declare_plugin(plugin, params, guard)
    from edgekit.plugins import load_plugin

    unknown = sorted(set(load_plugin(stored).calls_per_tick()) - set(specs))
    if unknown:
        raise InputSpecError(
            f"{ref}: plugin {plugin} calls network(s) {unknown} the model does not have "
            f"(networks: {', '.join(specs)})"
        )
    return ProgramSpec(PLUGIN, stored)


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
            _by_example(k, ("batch", *v.shape[1:]), v.dtype.name, v) for k, v in samples.items()
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
    for t in ins:
        check_tensor_name(t.name, ref)
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
    out_specs = []
    for n, o in zip(names, outs, strict=True):
        dtype = str(o.dtype).removeprefix("torch.")
        out_specs.append(_by_example(n, ("batch", *o.shape[1:]), dtype, o))
    return NetworkSpec("model", ins, tuple(out_specs), {"batch": 2}), samples


def _by_example(name: str, shape: tuple[Dim, ...], dtype: str, values: Any) -> TensorSpec:
    """The spec of a tensor known only by example (numpy or torch); an integer one gets the
    range of the values seen, ``[min, max + 1)`` (its sampler needs one)."""
    if dtype not in _INT_DTYPES:
        return TensorSpec(name, shape, dtype)
    if math.prod(values.shape) == 0:
        return TensorSpec(name, shape, dtype, low=0, high=1)
    return TensorSpec(name, shape, dtype, low=int(values.min()), high=int(values.max()) + 1)


_INT_DTYPES = {f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)}


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


def load_pt2(
    path: Path, inputs: str | Path | None, allow_pickle: bool, timeout: float | None
) -> TorchSource:
    guard = UserCode(str(path), timeout)  # a trusted archive's pickles are user code
    module, placeholders = read_pt2(path, allow_pickle, guard)
    described: Any = inputs
    if inputs is None:
        described = [_pt2_input(path, *p) for p in placeholders]
    return torch_source(str(path), module, described, 50.0, "torch.export", guard)


def _pt2_input(path: Path, name: str, shape: tuple[Dim, ...], dtype: str) -> TensorSpec:
    if dtype in _INT_DTYPES:  # token ids, indices: drawing from a guessed range would mislead
        raise InputSpecError(
            f"{path}: input {name!r} is {dtype} and a .pt2 archive does not record its value "
            "range; pass --inputs SAMPLES.npz with real values"
        )
    return TensorSpec(name, shape, dtype)


def load_pickle(
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
    return torch_source(str(path), obj, inputs, 50.0, "pickle", guard)
