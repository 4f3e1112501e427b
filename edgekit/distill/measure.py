"""What a distillation report measures of teacher and student besides fidelity: size, FLOPs and
calls per tick (:func:`facts`), and whole-tick latency on onnxruntime (:func:`latency`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit import progress
from edgekit.distill.config import DistillConfig
from edgekit.loader import TorchSource
from edgekit.models import build_program


def facts(src: TorchSource, program: str | None) -> dict[str, Any]:
    """Reference, program, calls and FLOPs per tick, parameters and config of a model."""
    from edgekit.inspect import tick_flops

    params = {id(p): p.numel() for net in src.networks.values() for p in net.parameters()}
    if program not in src.spec.programs:  # a model without named programs: its default one
        program = None
    pspec = src.spec.programs[program] if program else src.spec.program
    return {
        "ref": src.ref,
        "program": program or next(iter(src.spec.programs), "default"),
        "calls_per_tick": build_program(pspec).calls_per_tick(),
        "params": int(sum(params.values())),
        "flops_per_tick": tick_flops(src, program),
        "config": src.spec.config,
    }


def latency(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    t_rt: Any,
    s_rt: Any,
    config: DistillConfig,
    threads: int,
) -> dict[str, Any]:
    """Whole-tick p50 of teacher and student on onnxruntime, timed alternately."""
    from edgekit.loop.timing import time_ticks

    if config.latency_ticks <= 0:
        return {"measured": False, "why": "latency check disabled"}
    t_prog = build_program(source.spec.programs.get(pname, source.spec.program))
    s_prog = build_program(
        student.spec.program
        if config.mode == "steps"
        else student.spec.programs.get(pname, student.spec.program)
    )
    n = max(1, config.latency_ticks // 3)
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    with progress.timed(f"timing latency, teacher vs student: 3 x {n} ticks each"):
        for _ in range(3):
            a.append(time_ticks(t_prog, t_rt, n, warmup=1).planning_ns)
            b.append(time_ticks(s_prog, s_rt, n, warmup=1).planning_ns)
    t_ms = float(np.median(np.concatenate(a))) / 1e6
    s_ms = float(np.median(np.concatenate(b))) / 1e6
    return {
        "measured": True,
        "where": "this host (cpu), onnxruntime FP32",
        "method": f"edgekit bench's whole-tick timer, p50 of the ticks that run the networks "
        f"({3 * n} ticks each), teacher and "
        "student alternating",
        "teacher_program": pname,
        "teacher_p50_ms": t_ms,
        "student_p50_ms": s_ms,
        "speedup": t_ms / s_ms if s_ms > 0 else None,
        "threads": threads,
    }
