"""``edgekit eval``: task success of a (compressed) policy in closed loop, next to its teacher."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from edgekit.errors import BadInputError
from edgekit.eval.config import EvalConfig
from edgekit.eval.envs import get_task
from edgekit.eval.runner import PolicyEval, rollout
from edgekit.eval.stats import paired_comparison
from edgekit.gates import Gate, Gated, lower_bound
from edgekit.loader import Source, is_factory_ref, load, load_origin
from edgekit.models import get_binding
from edgekit.plugins import code_trusted


@dataclass
class EvalResult(Gated):
    """Both policies' episodes, the success ratio, and the gate (``passed``)."""

    candidate: PolicyEval
    teacher: PolicyEval | None
    report: dict[str, Any]
    config: EvalConfig

    @property
    def ratio(self) -> float | None:
        """Candidate success rate / teacher success rate (None without a teacher)."""
        if self.teacher is None:
            return None
        t = self.teacher.success_rate
        return self.candidate.success_rate / t if t > 0 else None

    @cached_property
    def paired(self) -> dict[str, Any] | None:
        """Teacher vs candidate on the same seeded episodes (:mod:`edgekit.eval.stats`)."""
        return paired_comparison(self.teacher, self.candidate) if self.teacher else None

    @property
    def gates(self) -> list[Gate]:
        limit, cfg = self.config.min_success_ratio, self.config
        if limit is None:
            return []
        teacher = self.teacher.success_rate if self.teacher else 0.0
        paired = self.paired
        # The gate is the ratio; the paired test is evidence next to it, never the verdict.
        significance = f"; paired on the same seeds: {paired['summary']}" if paired else ""
        return [
            lower_bound(
                "eval", "task", "success_ratio", self.ratio, limit,
                f"{cfg.episodes} seeded closed-loop episodes each, onnxruntime, Wilson 95% "
                f"intervals in the stage report{significance}",
                name=f"eval: {cfg.env} success ratio to teacher >= {limit:g}",
                message=(f"success ratio {_fmt(self.ratio)} (candidate "
                         f"{self.candidate.success_rate:.2f} vs teacher {teacher:.2f}) < "
                         f"--min-success-ratio {limit:g}" if teacher > 0 else
                         f"success ratio undefined: the teacher succeeded in none of "
                         f"{cfg.episodes} episodes (candidate {self.candidate.successes}/"
                         f"{cfg.episodes}), so there is no success to keep; give a teacher "
                         "that does the task (--teacher), or more episodes")
                + (f"; {paired['summary']}" if paired else ""),
            )
        ]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        from edgekit.reports.envelope import envelope

        return envelope("eval", self.report, self.gates)


def evaluate(model: str | Path | Source, config: EvalConfig | None = None) -> EvalResult:
    """Run ``model`` for ``config.episodes`` seeded episodes of ``config.env``, and its
    teacher too; ``result.passed`` tells whether it kept ``config.min_success_ratio`` of the
    teacher's success (exit 1 in the CLI when not).

    ``model`` is what is evaluated: an artifact folder (distilled, quantized...) or any model
    reference; it runs through onnxruntime as it ships.

    Raises:
        BadInputError: unknown task, a model kind the task cannot drive (exit 2).
        BackendMissingError: gymnasium / MuJoCo not installed (exit 3).
    """
    config = config or EvalConfig()
    env, episodes, seed = config.env, config.episodes, config.seed
    min_success_ratio, program = config.min_success_ratio, config.program
    task = get_task(env)
    source = load(str(model)) if isinstance(model, str | Path) else model
    _check_kind(source, task)
    teacher_src, no_teacher = _teacher(source, config.teacher)
    if min_success_ratio is not None and teacher_src is None:
        raise BadInputError(f"--min-success-ratio needs a teacher: {no_teacher}")
    cand = rollout(source, task, episodes, seed, program, runtime=config.runtime)
    ref = rollout(teacher_src, task, episodes, seed, program) if teacher_src else None
    result = EvalResult(cand, ref, {}, config)
    paired = result.paired
    result.report = {
        "report": "edgekit.eval",
        "task": {
            "name": task.name,
            "env": task.gym_id,
            "summary": task.summary,
            "max_steps": task.max_steps,
            # what the model's actions drive: "torque", or "joint_position" (PD-tracked)
            "commands": get_binding(source.spec.kind).command_for(source.spec.program.params),
        },
        "episodes": episodes,
        "seed": seed,
        "runtime": (
            "OpenVINO CPU plugin (f32)" if config.runtime == "openvino" else "onnxruntime CPU"
        )
        + " sessions of the model's networks, its loop program; the teacher on onnxruntime",
        "candidate": cand.to_dict(),
        "teacher": ref.to_dict() if ref else None,
        "success_ratio": result.ratio,
        "paired": paired,
        "gate": {
            "min_success_ratio": min_success_ratio,
            "passed": result.passed,
            # reported next to the ratio gate; it does not decide the verdict
            "significance": paired["summary"] if paired else None,
        },
    }
    if teacher_src is None and config.teacher == "auto":
        result.report["notes"] = [f"no teacher: {no_teacher}"]
    return result


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _check_kind(source: Source, task: Any) -> None:
    if source.spec.kind not in task.kinds:
        raise BadInputError(
            f"{source.ref}: a {source.spec.kind} model cannot drive task {task.name!r} "
            f"(it takes: {', '.join(task.kinds)})"
        )


def _teacher(source: Source, teacher: str) -> tuple[Source | None, str]:
    """The teacher, or None and why there is none (said in a note, or by the gate's error)."""
    if teacher == "none":
        return None, "--teacher none"
    if teacher != "auto":
        return load(teacher), ""
    origin = _torch_origin(getattr(source, "origin", None) or {})
    if origin is None:
        return None, f"{source.ref} records no PyTorch source; pass --teacher REF"
    ref = str(origin["ref"])
    if is_factory_ref(ref) and not code_trusted(ref):
        return None, (
            f"{source.ref} was made from the factory {ref} (code an artifact names); pass "
            f"--teacher {ref}, or --allow-plugin to import it"
        )
    try:
        return load_origin(origin, "the teacher"), ""
    except BadInputError as e:  # moved, changed, or a pickle the user trusted back then
        return None, f"its PyTorch source cannot be loaded ({e}); pass --teacher REF"


def _torch_origin(info: dict[str, Any]) -> dict[str, Any] | None:
    """The first PyTorch model up an artifact's chain of sources (distill -> quantize...)."""
    while info:
        if info.get("type") == "torch":
            return info
        info = info.get("origin") or info.get("source") or {}
    return None
