"""Closed-loop episodes: a model's control-loop program driving a simulated task.

What runs is what ships: the model's ONNX networks in onnxruntime sessions (a PyTorch model is
exported first), stepped by its own loop program (the diffusion sampler's every denoising call,
the controller's history ring), one tick per replanning point. The kind's closed-loop binding
(``edgekit/models/<kind>/observe.py``) builds each step's observation and picks the commands a
tick hands the robot; the task turns them into torques. Episodes are seeded: episode i resets
the simulator and the program's noise with ``seed + i``, so two runs are identical.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import progress
from edgekit.eval.envs import Task
from edgekit.eval.stats import clopper_pearson, t_interval, wilson
from edgekit.loader import Source
from edgekit.models import get_binding


@dataclass
class Episode:
    seed: int
    success: bool
    ret: float  # sum of the environment's rewards
    final_distance: float | None
    steps: int
    ticks: int


@dataclass
class PolicyEval:
    """Every episode of one model on one task, and their summary with 95% intervals."""

    ref: str
    episodes: list[Episode] = field(default_factory=list)
    tick_ms: list[float] = field(default_factory=list)  # every tick, measured in the loop

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / max(1, len(self.episodes))

    @property
    def success_ci(self) -> tuple[float, float]:
        return wilson(self.successes, len(self.episodes))

    @property
    def success_ci_exact(self) -> tuple[float, float]:
        return clopper_pearson(self.successes, len(self.episodes))

    @property
    def return_mean(self) -> float:
        return float(np.mean([e.ret for e in self.episodes])) if self.episodes else 0.0

    @property
    def return_ci(self) -> tuple[float, float]:
        return t_interval([e.ret for e in self.episodes])

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.success_ci
        rlo, rhi = self.return_ci
        return {
            "ref": self.ref,
            "episodes": len(self.episodes),
            "successes": self.successes,
            "success_rate": self.success_rate,
            "success_ci95": [lo, hi],
            "success_ci_method": "Wilson score interval",
            "success_ci95_exact": list(self.success_ci_exact),
            "success_ci_exact_method": "Clopper-Pearson (exact binomial)",
            "return_mean": self.return_mean,
            "return_ci95": [rlo, rhi],
            "return_ci_method": "Student t interval of the mean (n - 1 degrees of freedom)",
            "tick_p50_ms": float(np.median(self.tick_ms)) if self.tick_ms else None,
            "tick_p99_ms": float(np.percentile(self.tick_ms, 99)) if self.tick_ms else None,
            "tick_timing": "measured: each tick of the closed loop on this host's CPU",
            "per_episode": [asdict(e) for e in self.episodes],
        }


def rollout(
    source: Source,
    task: Task,
    episodes: int,
    seed: int,
    program: str | None = None,
    threads: int | None = None,
    runtime: str = "ort",
) -> PolicyEval:
    """Run ``episodes`` seeded episodes of ``source`` on ``task`` through onnxruntime (or
    ``runtime="openvino"``: OpenVINO's CPU plugin in f32)."""
    from edgekit.bench.api import resolve_program
    from edgekit.loop import TickContext
    from edgekit.loop.timing import timed_tick
    from edgekit.runtimes import OrtRuntime, default_threads

    binding = get_binding(source.spec.kind)
    with tempfile.TemporaryDirectory(prefix="edgekit-eval-") as work:
        from edgekit.export.onnx import ensure_onnx

        files = ensure_onnx(source, Path(work) / "fp32")
        if runtime == "openvino":
            from edgekit.runtimes.openvino import OpenVinoRuntime

            rt: Any = OpenVinoRuntime(files, threads or default_threads())
        else:
            rt = OrtRuntime(files, threads=threads or default_threads())
        prog, _ = resolve_program(source, program, {})
        env = task.make(render=binding.renders(prog.params))
        command = binding.command_for(prog.params)
        result = PolicyEval(source.ref)
        try:
            with (
                progress.task(f"{task.name} episodes of {source.ref}", total=episodes) as bar,
                progress.timed("timing the ticks of the episodes"),
            ):
                for i in range(episodes):
                    ep_seed = seed + i
                    obs, _ = env.reset(seed=ep_seed)
                    prog.reset(ep_seed)
                    observe = binding.new_observer(prog.params)
                    queue: list[np.ndarray] = []
                    anchor = None
                    ret, ticks, steps = 0.0, 0, 0
                    for steps in range(1, task.max_steps + 1):  # noqa: B007
                        o = observe(env, obs)
                        if not queue:
                            out, ns = timed_tick(prog, TickContext(rt), o)
                            result.tick_ms.append(ns / 1e6)
                            ticks += 1
                            queue, anchor = binding.actions(out), task.anchor(env)
                        torque = task.actuate(env, queue.pop(0), command, anchor)
                        obs, reward, term, trunc, _ = env.step(torque)
                        ret += float(reward)
                        if term or trunc:
                            break
                    dist = getattr(task, "distance", None)
                    result.episodes.append(
                        Episode(ep_seed, task.success(env, obs), ret,
                                dist(obs) if dist else None, steps, ticks)
                    )  # fmt: skip
                    bar.advance(info=f"success {result.successes}/{i + 1}")
        finally:
            env.close()
    return result


def record_observations(
    task: Task, kind: str, params: dict[str, Any], episodes: int, seed: int, noise: float = 0.0
) -> dict[str, np.ndarray]:
    """What the loop program sees at each of its ticks while the task's expert acts: a
    calibration / distillation set in the ``calib_data`` format (samples in time order).

    ``noise`` > 0 perturbs every other episode DART-style (the expert's torque + N(0, noise)
    is executed), so the set also holds the off-course states a student visits in closed loop.
    """
    binding = get_binding(kind)
    env = task.make(render=binding.renders(params))
    every = binding.plans_every(params)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, np.ndarray]] = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            observe = binding.new_observer(params)
            for step in range(task.max_steps):
                o = observe(env, obs)
                if step % every == 0:
                    rows.append(o)
                torque = task.expert(env)
                if noise > 0 and i % 2 == 1:
                    torque = np.clip(torque + rng.normal(0, noise, torque.shape), -1, 1)
                obs, _, term, trunc, _ = env.step(torque.astype(np.float32))
                if term or trunc:
                    break
    finally:
        env.close()
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
