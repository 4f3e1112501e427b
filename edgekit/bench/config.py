"""Typed settings of ``edgekit bench``, validated before any work starts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from edgekit.config import VerbConfig
from edgekit.validate import MAX_TICKS

Stat = Literal["p50", "p90", "p99", "max", "mean"]


class BenchConfig(VerbConfig):
    """Where and how long to time the whole tick, and what it is held to.

    Attributes:
        target: the target profile (measured on this host when it is this machine, otherwise a
            labelled roofline estimate).
        runtime: ort (onnxruntime, default), openvino (OpenVINO's CPU plugin), torch, or
            tensorrt (on a Jetson).
        ticks, warmup: timed and untimed whole ticks.
        threads: intra-op threads (default: the usable CPUs); spinning: let onnxruntime threads
            spin-wait.
        hz, budget_ms: loop rate (default: the model's) and tick budget (default: the
            target's headroom x the loop period).
        gate: the statistic held to the budget.
        program, loop: another loop program of the model, and parameter overrides
            (``{"num_inference_steps": 4}``).
        require_measured: a target that can only be estimated fails instead.
        precision: estimates: fp32, fp16, int8 or int16 (default: the target's usual);
            measured with the openvino runtime: its inference precision, fp32 or bf16.
        seed: the tick's noise.
    In a recipe the target, hz and budget come from its ``targets:`` mapping.
    """

    stage: Literal["bench"] = "bench"
    target: str = "cpu"
    runtime: Literal["ort", "openvino", "torch", "tensorrt"] = "ort"
    ticks: int = Field(default=200, ge=1, le=MAX_TICKS)
    warmup: int = Field(default=20, ge=0, le=MAX_TICKS)
    threads: int | None = Field(default=None, ge=1)
    spinning: bool = False
    hz: float | None = Field(default=None, gt=0)
    budget_ms: float | None = Field(default=None, gt=0)
    gate: Stat = "p99"
    program: str | None = None
    loop: dict[str, Any] = Field(default_factory=dict)
    require_measured: bool = False
    precision: Literal["fp32", "bf16", "fp16", "int8", "int16"] | None = None
    seed: int = 0
