"""Typed settings of ``edgekit eval``, validated before any work starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgekit.config import VerbConfig
from edgekit.validate import MAX_EPISODES


class EvalConfig(VerbConfig):
    """Which task, how many seeded episodes, and the gate against the teacher.

    Attributes:
        env: the simulated task (``edgekit.eval.TASKS``).
        episodes: seeded episodes per policy; episode i uses ``seed + i``.
        teacher: the reference policy: "auto" (the PyTorch model the artifact was made from,
            read from its manifest), "none", or a model reference.
        min_success_ratio: gate: the candidate's success rate must be at least this fraction
            of the teacher's (exit 1 in the CLI).
        program: another loop program of the model.
        runtime: what runs the candidate's networks: ``ort`` (onnxruntime) or ``openvino``
            (OpenVINO's CPU plugin, f32); the teacher always runs on onnxruntime in FP32.
    """

    stage: Literal["eval"] = "eval"
    env: str = "reacher"
    episodes: int = Field(default=20, ge=1, le=MAX_EPISODES)
    seed: int = 0
    teacher: str = "auto"
    min_success_ratio: float | None = Field(default=None, gt=0, le=1.5)
    program: str | None = None
    runtime: Literal["ort", "openvino"] = "ort"
