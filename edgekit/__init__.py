"""edgekit: fit a robot's AI stack on the robot.

The Python API mirrors the CLI: ``edgekit.export``, ``edgekit.bench``, ``edgekit.load``.
Heavy backends (torch, onnxruntime) are imported only when a function needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"
