"""OpenVINO on the CPU: one compiled model per network, the same loop programs on top.

Each network (ONNX, or OpenVINO IR ``.xml`` + ``.bin``) is read and compiled once for the CPU
device with the latency hint, one stream, the thread count edgekit sets, and an explicit
inference precision. The precision is never left to the plugin: on a CPU with AVX-512 BF16 or
AMX, OpenVINO's CPU plugin would otherwise run float models in bf16 by itself, and an "FP32"
figure would not be FP32. ``bf16`` is accepted only where the CPU has it (:mod:`edgekit.isa`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BadInputError
from edgekit.loop import Arrays
from edgekit.runtimes.base import require

PRECISIONS = ("f32", "bf16")


def check_precision(precision: str) -> None:
    """``precision`` is one OpenVINO's CPU plugin computes here, or a one-line refusal."""
    from edgekit.isa import host_isa

    if precision not in PRECISIONS:
        raise BadInputError(
            f"--precision {precision!r}: OpenVINO runs f32 or bf16 (expected one of "
            f"{', '.join(PRECISIONS)})"
        )
    isa = host_isa()
    if precision == "bf16" and not isa.has_bf16:
        raise BadInputError(
            f"--precision bf16: this CPU ({isa.model or isa.arch}, {isa.name}: "
            f"{', '.join(isa.features) or 'no INT8/BF16 features'}) has neither AVX-512 BF16 nor "
            "AMX, so OpenVINO would emulate bf16 slower than f32; use f32 or INT8"
        )


class OpenVinoRuntime:
    """One OpenVINO ``CompiledModel`` (and infer request) per network, CPU device."""

    name = "openvino"

    def __init__(self, files: dict[str, Path], threads: int, precision: str = "f32") -> None:
        check_precision(precision)
        ov = require("openvino", "openvino")
        self.threads, self.precision = threads, precision
        self.core = ov.Core()
        self.requests: dict[str, Any] = {}
        self.outputs: dict[str, list[str]] = {}
        self.compiled_precision: dict[str, str] = {}
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
            "INFERENCE_NUM_THREADS": str(threads),
            "INFERENCE_PRECISION_HINT": precision,
        }
        for net, path in files.items():
            try:
                compiled = self.core.compile_model(self.core.read_model(str(path)), "CPU", config)
            except Exception as e:  # OpenVINO raises RuntimeError with a multi-line story
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise BadInputError(f"{path}: OpenVINO cannot compile it ({first})") from None
            self.requests[net] = compiled.create_infer_request()
            self.outputs[net] = [o.get_any_name() for o in compiled.outputs]
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type: read back
            self.compiled_precision[net] = str(hint.get_type_name())

    def run(self, network: str, feeds: Arrays) -> Arrays:
        request = self.requests[network]
        request.infer(feeds)
        # copies: the request's output tensors are overwritten by its next call
        return {name: np.array(request.get_tensor(name).data) for name in self.outputs[network]}

    def settings(self) -> dict[str, Any]:
        import openvino as ov

        return {
            "runtime": "openvino",
            "version": ov.__version__,
            "device": "CPU",
            "performance_hint": "LATENCY",
            "streams": 1,
            "intra_op_threads": self.threads,  # (INFERENCE_NUM_THREADS)
            "inference_precision": self.precision,
            "compiled_precision": dict(self.compiled_precision),
        }
