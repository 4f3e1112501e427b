"""Runtimes that execute one named network: onnxruntime (the default) and eager PyTorch.

Both implement :class:`edgekit.loop.Runtime`, so a loop program runs unchanged on either. The
thread count is always explicit, and onnxruntime's spin-waiting is off unless asked for: on a
robot, spinning threads steal cores from the rest of the control stack, and on small machines
they make timings flip between two levels (see README, "Measuring").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BackendMissingError, BadInputError
from edgekit.loop import Arrays
from edgekit.spec import ModelSpec


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class OrtRuntime:
    """One onnxruntime InferenceSession per network, CPU execution provider."""

    name = "ort"

    def __init__(
        self,
        files: dict[str, Path],
        threads: int,
        spinning: bool = False,
        optimize: bool = True,
        providers: list[Any] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.threads, self.spinning, self.optimize = threads, spinning, optimize
        self.sessions: dict[str, Any] = {}
        self.outputs: dict[str, list[str]] = {}
        for net, path in files.items():
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
            so.graph_optimization_level = (
                ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                if optimize
                else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            )
            so.log_severity_level = 3
            try:
                sess = ort.InferenceSession(
                    str(path), so, providers=providers or ["CPUExecutionProvider"]
                )
            except Exception as e:  # ORT raises its own exception types
                raise BadInputError(f"{path}: onnxruntime cannot load it ({e})") from None
            self.sessions[net] = sess
            self.outputs[net] = [o.name for o in sess.get_outputs()]

    def run(self, network: str, feeds: Arrays) -> Arrays:
        return dict(
            zip(self.outputs[network], self.sessions[network].run(None, feeds), strict=True)
        )

    def settings(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "runtime": "onnxruntime",
            "version": ort.__version__,
            "provider": "CPUExecutionProvider",
            "intra_op_threads": self.threads,
            "inter_op_threads": 1,
            "allow_spinning": self.spinning,
            "graph_optimization": "all" if self.optimize else "disabled",
        }


class TorchRuntime:
    """Eager PyTorch in inference mode: the baseline users run today."""

    name = "torch"

    def __init__(self, networks: dict[str, Any], spec: ModelSpec, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        self.networks = networks
        self.inputs = {n.name: n.input_names for n in spec.networks}
        self.out_names = {n.name: n.output_names for n in spec.networks}

    def run(self, network: str, feeds: Arrays) -> Arrays:
        import torch

        with torch.inference_mode():
            out = self.networks[network](
                *[torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.inputs[network]]
            )
        outs = out if isinstance(out, tuple | list) else (out,)
        return {n: o.numpy() for n, o in zip(self.out_names[network], outs, strict=True)}

    def settings(self) -> dict[str, Any]:
        import torch

        return {
            "runtime": "torch",
            "version": torch.__version__,
            "mode": "eager, inference_mode",
            "intra_op_threads": self.threads,
        }


def require(module: str, extra: str) -> Any:
    """Import an optional backend or fail with the install command (exit code 3)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BackendMissingError(
            f"{module} is not installed; install it with `pip install 'edgekit[{extra}]'`"
        ) from None


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
