"""``edgekit.Policy``: an artifact's control tick on the robot, without torch.

    policy = edgekit.Policy.load("out/dp-int8", runtime="ort", target="cpu")
    policy.reset(seed=0)
    while running:                       # the robot's 10 Hz / 50 Hz loop
        commands = policy.act({"image": frames, "proprio": joints})
        send(commands["actions"])
    print(policy.report())               # ticks, p50/p99, deadline misses

The tick is the artifact's own loop program (the zoo's, a declared tick or a trusted plugin),
run through the same :func:`edgekit.loop.timing.timed_tick` as ``edgekit bench`` and
``edgekit eval``. Every tick is timed; one that overruns the budget (the target's, at the
program's loop rate, unless given) is counted and, if given, reported to ``on_miss(ms,
budget_ms)`` right away, so the robot can react (hold, slow down) in the same cycle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.stats import LatencyStats
from edgekit.errors import BadInputError, InputSpecError
from edgekit.loader import OnnxSource, load
from edgekit.loop import Arrays, LoopProgram, Runtime, TickContext
from edgekit.loop.timing import timed_tick
from edgekit.validate import int_ranges, observation_bounds

RUNTIMES = ("ort", "openvino", "tensorrt", "qnn")
KEEP = 10_000  # tick times kept for the statistics (the latest)


class Policy:
    """A loaded artifact, ready to act; see the module docstring."""

    def __init__(
        self,
        ref: str,
        program: LoopProgram,
        runtime: Runtime,
        hz: float,
        budget_ms: float,
        on_miss: Callable[[float, float], None] | None = None,
        bounds: dict[str, tuple[int, int]] | None = None,
        check_finite: bool = True,
    ) -> None:
        self.ref, self.program, self.runtime = ref, program, runtime
        self.bounds, self.check_finite = dict(bounds or {}), check_finite
        self.hz, self.budget_ms, self.on_miss = hz, budget_ms, on_miss
        self.misses = 0
        self.ticks = 0
        self._ms: deque[float] = deque(maxlen=KEEP)
        self._spec = {t.name: t for t in program.observation_spec()}
        self.program.reset(0)

    @classmethod
    def load(
        cls,
        artifact: str | Path,
        runtime: str = "ort",
        *,
        target: str = "cpu",
        threads: int | None = None,
        budget_ms: float | None = None,
        program: str | None = None,
        on_miss: Callable[[float, float], None] | None = None,
        check_finite: bool = True,
        precision: str = "f32",
    ) -> Policy:
        """Load an exported artifact (or ONNX file / model card) to run on ``runtime``.

        ``check_finite=False`` lets NaN/Inf in float observations through to the networks (by
        default :meth:`act` refuses them, naming the observation: a NaN from a sensor would
        otherwise come back as NaN actions). ``precision``: OpenVINO's inference precision
        (``runtime="openvino"``), ``f32`` or ``bf16`` where the CPU has it."""
        from edgekit.bench.api import resolve_program
        from edgekit.targets import get_target

        if runtime not in RUNTIMES:
            raise BadInputError(f"runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
        source = load(str(artifact))
        if not isinstance(source, OnnxSource):
            raise BadInputError(
                f"{artifact}: Policy runs exported artifacts; run `edgekit export` first"
            )
        if runtime == "ort":
            from edgekit.bench.host import isa_conflict

            wrong = isa_conflict(source)
            if wrong:
                raise BadInputError(f"{artifact}: {wrong}")
        prog, hz = resolve_program(source, program, {})
        tgt = get_target(target)
        budget = budget_ms if budget_ms is not None else tgt.budget_ms(hz)
        if not budget > 0:
            raise BadInputError(f"budget_ms must be > 0 (got {budget})")
        rt = _runtime(source, runtime, tgt.name, threads, precision)
        return cls(str(artifact), prog, rt, hz, budget, on_miss,
                   observation_bounds(source, prog), check_finite)  # fmt: skip

    def reset(self, seed: int = 0) -> None:
        """Start an episode: history, queues and recurrent state cleared, noise reseeded."""
        self.program.reset(seed)

    def act(self, observation: Arrays) -> Arrays:
        """One tick on ``observation`` (the program's named, batch-free arrays)."""
        for name, spec in self._spec.items():
            if name not in observation:
                raise InputSpecError(
                    f"observation is missing {name!r} (expected {', '.join(self._spec)})"
                )
            value = np.asarray(observation[name])
            spec.check(value, "observation")
            if self.check_finite and value.dtype.kind in "fc" and not np.isfinite(value).all():
                bad = int((~np.isfinite(value)).sum())
                raise InputSpecError(
                    f"observation {name!r} holds {bad} NaN/Inf value(s) of {value.size}; fix the "
                    "reading, or Policy.load(..., check_finite=False) to pass it to the networks"
                )
        int_ranges(observation, self.bounds, "observation")
        out, ns = timed_tick(self.program, TickContext(self.runtime), observation)
        ms = ns / 1e6
        self.ticks += 1
        self._ms.append(ms)
        if ms > self.budget_ms:
            self.misses += 1
            if self.on_miss is not None:
                self.on_miss(ms, self.budget_ms)
        return out

    @property
    def last_ms(self) -> float | None:
        return self._ms[-1] if self._ms else None

    def stats(self) -> LatencyStats:
        """Tick latency over the latest ticks (up to 10,000); misses counted against the budget."""
        if not self._ms:
            raise BadInputError("no ticks yet: call act() first")
        return LatencyStats.from_ns(np.asarray(self._ms) * 1e6, deadline_ms=self.budget_ms)

    def report(self) -> dict[str, Any]:
        return {
            "artifact": self.ref,
            "runtime": getattr(self.runtime, "name", type(self.runtime).__name__),
            "hz": self.hz,
            "budget_ms": self.budget_ms,
            "ticks": self.ticks,
            "budget_misses": self.misses,
            "stats_ms": self.stats().to_dict() if self._ms else None,
            "evidence": "measured: wall clock around each act() on this device",
        }


def _runtime(
    source: OnnxSource, runtime: str, target: str, threads: int | None, precision: str
) -> Runtime:
    from edgekit.runtimes import default_threads

    if runtime == "ort":
        from edgekit.runtimes import OrtRuntime

        return OrtRuntime(source.files, threads=threads or default_threads())
    if runtime == "openvino":
        from edgekit.runtimes.openvino import OpenVinoRuntime

        return OpenVinoRuntime(source.files, threads or default_threads(), precision)
    if runtime == "tensorrt":
        from edgekit.bench.api import _engines
        from edgekit.runtimes import TrtRuntime

        return TrtRuntime(*_engines(source))
    from edgekit.runtimes.htp import HtpRuntime

    contexts = source.origin.get("qnn_contexts")
    if not contexts:
        raise BadInputError(
            f"{source.ref}: runtime 'qnn' runs QNN context binaries: export with --format qnn"
        )
    return HtpRuntime({n: Path(p) for n, p in contexts.items()}, target)
