"""Eager PyTorch: the baseline a whole tick is compared with (imports torch when built)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.loop import Arrays
from edgekit.spec import ModelSpec


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
