"""TensorRT engines on the Jetson's GPU, without torch (imports tensorrt when built).

Device memory and the stream come from cuda-python (:mod:`edgekit.runtimes.cuda`). Every
TensorRT call that reports failure is checked: an input shape outside the engine's optimisation
profile is refused naming the tensor and the profile (TensorRT would otherwise run on
uninitialised memory), feeds are cast to the engine's dtypes (same kind only), and an engine
built by another TensorRT version or for another GPU is refused before it is deserialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BadInputError, InputSpecError
from edgekit.loop import Arrays
from edgekit.runtimes.base import require
from edgekit.runtimes.cuda import CudaError


def check_engine_compat(built: dict[str, Any], tensorrt: str, gpu: dict[str, Any]) -> None:
    """Refuse engines built by another TensorRT version or for another GPU architecture.

    TensorRT engines are tied to the exact TensorRT version and the GPU's compute capability
    that built them (unless built version- or hardware-compatible, which edgekit does not).
    """
    want = built.get("tensorrt_version")
    if want and want != tensorrt:
        raise BadInputError(
            f"engines built with TensorRT {want}; this device has TensorRT {tensorrt}: rebuild "
            "them here (build_engines.sh in the artifact, or `edgekit export ... --build`)"
        )
    cc, here = built.get("compute_capability"), gpu.get("compute_capability")
    if cc and here and cc != here:
        raise BadInputError(
            f"engines built for a GPU of compute capability {cc} ({built.get('gpu')}); this "
            f"GPU is {here} ({gpu.get('name')}): rebuild them on this device"
        )


def cast_feed(where: str, array: Any, dtype: np.dtype[Any]) -> np.ndarray:
    """An observation array in the engine input's dtype (a same-kind cast; else refused)."""
    arr = np.asarray(array)
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    if not np.can_cast(arr.dtype, dtype, "same_kind"):
        raise InputSpecError(f"{where}: got {arr.dtype}, the engine takes {dtype}")
    return np.ascontiguousarray(arr.astype(dtype))


def shape_error(where: str, shape: tuple[int, ...], profile: Any) -> str:
    """Why TensorRT refused an input shape: the engine's profile, when it has one."""
    if profile:
        lo, _, hi = (tuple(int(d) for d in s) for s in profile)
        return f"{where}: shape {shape} is outside the engine's profile (min {lo}, max {hi})"
    return f"{where}: TensorRT refused shape {shape} for this engine"


@dataclass
class _Net:
    engine: Any
    context: Any
    inputs: dict[str, np.dtype[Any]]
    outputs: dict[str, np.dtype[Any]]
    profiles: dict[str, Any]


class TrtRuntime:
    """TensorRT engines (one per network) on the CUDA GPU: the Jetson's runtime.

    Implements :class:`edgekit.loop.Runtime` with the TensorRT 10 tensor API
    (``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``) on one explicit CUDA
    stream; each call copies inputs in and outputs out, as a control loop that feeds host
    observations does. ``built`` is the artifact's record of the build (versions, GPU).
    """

    name = "tensorrt"

    def __init__(self, engines: dict[str, Path], built: dict[str, Any] | None = None) -> None:
        from edgekit.runtimes.cuda import DeviceBuffers, gpu

        trt = require("tensorrt", "tensorrt")
        self.trt = trt
        self.cuda = DeviceBuffers()  # refuses where there is no CUDA GPU (exit 3)
        self.gpu = gpu()
        check_engine_compat(built or {}, trt.__version__, self.gpu)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.nets = {net: self._load(trt, Path(path)) for net, path in engines.items()}

    def _load(self, trt: Any, path: Path) -> _Net:
        engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise BadInputError(
                f"{path}: TensorRT could not load this engine (built for another TensorRT "
                "version or GPU?); rebuild it on this device"
            )
        context = engine.create_execution_context()
        if context is None:
            raise CudaError(f"{path}: TensorRT could not create an execution context (GPU memory?)")
        inputs, outputs, profiles = {}, {}, {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            try:
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            except TypeError:
                raise BadInputError(
                    f"{path}: tensor {name!r} is {engine.get_tensor_dtype(name)}, which numpy "
                    "cannot hold; keep the graph's inputs and outputs FP32/FP16/int"
                ) from None
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs[name] = dtype
                if -1 in tuple(engine.get_tensor_shape(name)):
                    profiles[name] = engine.get_tensor_profile_shape(name, 0)
            else:
                outputs[name] = dtype
        return _Net(engine, context, inputs, outputs, profiles)

    def run(self, network: str, feeds: Arrays) -> Arrays:
        net = self.nets[network]
        ctx, cuda = net.context, self.cuda
        for name, dtype in net.inputs.items():
            where = f"{network}/{name}"
            if name not in feeds:
                raise InputSpecError(f"{where}: the tick fed no such input to the engine")
            arr = cast_feed(where, feeds[name], dtype)
            if not ctx.set_input_shape(name, arr.shape):
                raise InputSpecError(shape_error(where, arr.shape, net.profiles.get(name)))
            if not ctx.set_tensor_address(name, cuda.to_device(where, arr)):
                raise CudaError(f"{where}: TensorRT refused the input's device address")
        unresolved = ctx.infer_shapes()
        if unresolved:
            raise InputSpecError(f"{network}: TensorRT could not infer shapes of {unresolved}")
        outs: dict[str, np.ndarray] = {}
        ptrs: dict[str, int] = {}
        for name, dtype in net.outputs.items():
            where = f"{network}/{name}"
            outs[name] = np.empty(tuple(int(d) for d in ctx.get_tensor_shape(name)), dtype)
            ptrs[name] = cuda.buffer(where, outs[name].nbytes)
            if not ctx.set_tensor_address(name, ptrs[name]):
                raise CudaError(f"{where}: TensorRT refused the output's device address")
        if not ctx.execute_async_v3(cuda.handle):
            raise CudaError(f"{network}: TensorRT failed to enqueue the engine (see its log)")
        for name, out in outs.items():
            cuda.to_host(ptrs[name], out, f"{network}/{name}")
        cuda.synchronize()
        return outs

    def settings(self) -> dict[str, Any]:
        return {
            "runtime": "tensorrt",
            "tensorrt": self.trt.__version__,
            "gpu": self.gpu["name"],
            "compute_capability": self.gpu["compute_capability"],
        }
