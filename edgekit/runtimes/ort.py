"""onnxruntime (the default runtime): one InferenceSession per network, CPU provider.

The thread count is always explicit, and spin-waiting is off unless asked for: on a robot,
spinning threads steal cores from the rest of the control stack, and on small machines they make
timings flip between two levels (see docs/benchmarks.md, "Measuring").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgekit.errors import BadInputError, InputSpecError
from edgekit.loop import Arrays

# onnxruntime's Gather on an index beyond its table (a token id beyond the vocabulary)
_OUT_OF_TABLE = re.compile(r"indices element out of data bounds, (idx=.*?\])")


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
            if Path(path).suffix == ".xml":
                raise BadInputError(
                    f"{path}: OpenVINO IR, not ONNX: run this artifact with --runtime openvino "
                    "(edgekit.Policy.load(..., runtime='openvino'))"
                )
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
            so.log_severity_level = 4  # errors come back as exceptions; no second copy
            try:
                sess = ort.InferenceSession(
                    str(path), so, providers=providers or ["CPUExecutionProvider"]
                )
            except Exception as e:  # ORT raises its own exception types
                raise BadInputError(f"{path}: onnxruntime cannot load it ({e})") from None
            self.sessions[net] = sess
            self.outputs[net] = [o.name for o in sess.get_outputs()]

    def run(self, network: str, feeds: Arrays) -> Arrays:
        try:
            outs = self.sessions[network].run(None, feeds)
        except Exception as e:  # onnxruntime's own types; the input's fault is said as such
            found = _OUT_OF_TABLE.search(str(e))
            if found is None:
                raise
            raise InputSpecError(
                f"network {network!r}: an index input is outside its embedding table "
                f"({found.group(1)}); token ids must lie in the model's vocabulary: fix the ids "
                "or the tokenizer"
            ) from None
        return dict(zip(self.outputs[network], outs, strict=True))

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
