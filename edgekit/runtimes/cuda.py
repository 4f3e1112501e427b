"""CUDA device memory, copies and a stream without torch: cuda-python's runtime bindings.

A Jetson's TensorRT needs device buffers and a stream; PyPI's aarch64 torch is CPU-only, so
edgekit takes them from ``cuda-bindings`` (NVIDIA's cuda-python, the ``tensorrt`` extra), as
TensorRT's own Python samples do. Every call's status is checked: a failure raises with CUDA's
error name and what edgekit was doing, never a silent zero pointer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import BackendMissingError, EdgekitError

# what the CUDA runtime says when there is no usable GPU (exit 3: a device is missing)
NO_DEVICE = {
    "cudaErrorNoDevice",
    "cudaErrorInsufficientDriver",
    "cudaErrorDevicesUnavailable",
    "cudaErrorStubLibrary",
    "cudaErrorCallRequiresNewerDriver",
    "cudaErrorSystemDriverMismatch",
    "cudaErrorCompatNotSupportedOnDevice",
}


class CudaError(EdgekitError):
    """A CUDA call failed on a GPU that exists (out of memory, a bad copy, a lost device)."""

    exit_code = 3


def bindings() -> Any:
    """cuda-python's runtime module (``cuda.bindings.runtime``; ``cuda.cudart`` before 12.6)."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart  # type: ignore[attr-defined,unused-ignore]

        return cudart
    except ImportError:
        raise BackendMissingError(
            "cuda-python is not installed (TensorRT's device buffers come from it); install it "
            "with `pip install 'edgekit[tensorrt]'`"
        ) from None


def _name(rt: Any, err: Any) -> str:
    name = rt.cudaGetErrorName(err)[1]
    text = rt.cudaGetErrorString(err)[1]
    name = name.decode() if isinstance(name, bytes) else str(name)
    text = text.decode() if isinstance(text, bytes) else str(text)
    return f"{name} ({text})"


def call(rt: Any, what: str, result: Any) -> Any:
    """Check one cuda-python result tuple ``(err, *values)``; return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != rt.cudaError_t.cudaSuccess:
        raise CudaError(f"CUDA {what} failed: {_name(rt, err)}")
    return values[0] if len(values) == 1 else tuple(values)


def gpu() -> dict[str, Any]:
    """The CUDA GPU here (name, compute capability) or a BackendMissingError saying why none."""
    rt = bindings()
    err, count = rt.cudaGetDeviceCount()
    if err != rt.cudaError_t.cudaSuccess or not count:
        why = _name(rt, err) if err != rt.cudaError_t.cudaSuccess else "no device"
        raise BackendMissingError(f"no CUDA GPU here: {why}")
    props = call(rt, "cudaGetDeviceProperties", rt.cudaGetDeviceProperties(0))
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else props.name
    return {
        "name": name.rstrip("\x00"),
        "compute_capability": f"{props.major}.{props.minor}",
        "cuda_runtime": call(rt, "cudaRuntimeGetVersion", rt.cudaRuntimeGetVersion()),
    }


class DeviceBuffers:
    """One stream and reusable device buffers (grown when a tensor needs more)."""

    def __init__(self) -> None:
        self.rt = bindings()
        gpu()  # refuses clearly where there is no GPU
        self.stream = call(self.rt, "cudaStreamCreate", self.rt.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # key -> (pointer, bytes)
        self._in_flight: list[np.ndarray] = []  # host arrays an async copy still reads

    @property
    def handle(self) -> int:
        """The stream as the integer TensorRT's ``execute_async_v3`` takes."""
        return int(self.stream)

    def buffer(self, key: str, nbytes: int) -> int:
        """A device pointer with room for ``nbytes`` (reused across ticks)."""
        ptr, size = self._buffers.get(key, (0, 0))
        if size < nbytes:
            if ptr:
                call(self.rt, "cudaFree", self.rt.cudaFree(ptr))
            ptr = int(call(self.rt, f"cudaMalloc({nbytes} bytes for {key})",
                           self.rt.cudaMalloc(max(nbytes, 1))))  # fmt: skip
            self._buffers[key] = (ptr, nbytes)
        return ptr

    def to_device(self, key: str, array: np.ndarray) -> int:
        host = np.ascontiguousarray(array)
        ptr = self.buffer(key, host.nbytes)
        self._in_flight.append(host)
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        copied = self.rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, self.stream)
        call(self.rt, f"copy of {key} to the GPU", copied)
        return ptr

    def to_host(self, ptr: int, out: np.ndarray, key: str) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        copied = self.rt.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, kind, self.stream)
        call(self.rt, f"copy of {key} from the GPU", copied)

    def synchronize(self) -> None:
        call(self.rt, "cudaStreamSynchronize", self.rt.cudaStreamSynchronize(self.stream))
        self._in_flight.clear()

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            self.rt.cudaFree(ptr)
        self._buffers.clear()
        if self.stream is not None:
            self.rt.cudaStreamDestroy(self.stream)
            self.stream = None
