"""Runtimes that execute one named network, by backend; each implements
:class:`edgekit.loop.Runtime`, so a loop program runs unchanged on any of them.

* ``ort``: onnxruntime (the default, and what runs on a CPU robot);
* ``torch``: eager PyTorch (the baseline);
* ``tensorrt``: TensorRT engines on a Jetson's GPU;
* ``htp``: the Qualcomm Hexagon NPU through onnxruntime-qnn (the x86 simulator here).

Importing this package imports no backend: each imports its own when a runtime is built.
"""

from edgekit.runtimes.base import default_threads, require
from edgekit.runtimes.ort import OrtRuntime
from edgekit.runtimes.tensorrt import TrtRuntime
from edgekit.runtimes.torch import TorchRuntime

__all__ = ["OrtRuntime", "TorchRuntime", "TrtRuntime", "default_threads", "require"]
