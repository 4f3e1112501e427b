"""TensorRT engines on the Jetson's GPU (imports tensorrt when built)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BackendMissingError
from edgekit.loop import Arrays
from edgekit.runtimes.base import require


class TrtRuntime:
    """TensorRT engines (one per network) on the CUDA GPU: the Jetson's runtime.

    Implements :class:`edgekit.loop.Runtime` with the TensorRT 10 tensor API
    (``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3``) and torch CUDA
    tensors for device memory; each call copies inputs in and outputs out, as a control loop
    that feeds host observations does.
    """

    name = "tensorrt"

    def __init__(self, engines: dict[str, Path]) -> None:
        trt = require("tensorrt", "tensorrt")
        import torch

        if not torch.cuda.is_available():
            raise BackendMissingError("TensorRT engines need a CUDA GPU; none here")
        self.trt, self.torch = trt, torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.stream = torch.cuda.Stream()
        self.nets: dict[str, tuple[Any, Any, list[str], list[str]]] = {}
        for net, path in engines.items():
            engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
            if engine is None:
                raise BackendMissingError(
                    f"{path}: TensorRT could not load this engine (built for another TensorRT "
                    "version or GPU?); rebuild it on this device"
                )
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            is_in = [engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names]
            inputs = [n for n, i in zip(names, is_in, strict=True) if i]
            outputs = [n for n, i in zip(names, is_in, strict=True) if not i]
            self.nets[net] = (engine, engine.create_execution_context(), inputs, outputs)

    def run(self, network: str, feeds: Arrays) -> Arrays:
        torch, trt = self.torch, self.trt
        engine, ctx, inputs, outputs = self.nets[network]
        keep = []
        for name in inputs:
            t = torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda()
            ctx.set_input_shape(name, tuple(t.shape))
            ctx.set_tensor_address(name, t.data_ptr())
            keep.append(t)
        outs = {}
        for name in outputs:
            dtype = torch.from_numpy(np.empty(0, trt.nptype(engine.get_tensor_dtype(name)))).dtype
            t = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=dtype, device="cuda")
            ctx.set_tensor_address(name, t.data_ptr())
            outs[name] = t
        ctx.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return {k: v.cpu().numpy() for k, v in outs.items()}

    def settings(self) -> dict[str, Any]:
        return {
            "runtime": "tensorrt",
            "tensorrt": self.trt.__version__,
            "gpu": self.torch.cuda.get_device_name(0),
        }
