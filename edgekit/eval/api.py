"""``edgekit eval``: task success of a (compressed) policy in closed loop, next to its teacher."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekit.errors import BadInputError, GateFailed
from edgekit.eval.envs import get_task
from edgekit.eval.runner import PolicyEval, rollout
from edgekit.loader import Source, load


@dataclass
class EvalResult:
    candidate: PolicyEval
    teacher: PolicyEval | None
    report: dict[str, Any]
    min_success_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        """Candidate success rate / teacher success rate (None without a teacher)."""
        if self.teacher is None:
            return None
        t = self.teacher.success_rate
        return self.candidate.success_rate / t if t > 0 else None

    @property
    def passed(self) -> bool:
        if self.min_success_ratio is None:
            return True
        return self.ratio is not None and self.ratio >= self.min_success_ratio


class EvalGateFailed(GateFailed):
    """The candidate's success ratio to its teacher misses ``--min-success-ratio``."""

    def __init__(self, message: str, result: EvalResult) -> None:
        super().__init__(message)
        self.result = result


def evaluate(
    model: str | Source,
    env: str = "reacher",
    episodes: int = 20,
    seed: int = 0,
    *,
    teacher: str | Source | None = "auto",
    min_success_ratio: float | None = None,
    program: str | None = None,
) -> EvalResult:
    """Run ``model`` for ``episodes`` seeded episodes of task ``env``, and its teacher too.

    Args:
        model: what is evaluated: an artifact folder (distilled, quantized...) or any model
            reference; it runs through onnxruntime as it ships.
        teacher: the reference policy: "auto" takes the PyTorch model the artifact was made
            from (its manifest), None evaluates ``model`` alone.
        min_success_ratio: gate: the candidate's success rate must be at least this fraction of
            the teacher's (raises :class:`EvalGateFailed`, exit 1).

    Raises:
        BadInputError: unknown task, a model kind the task cannot drive, bad counts (exit 2).
        BackendMissingError: gymnasium / MuJoCo not installed (exit 3).
    """
    task = get_task(env)
    if episodes < 1:
        raise BadInputError(f"--episodes must be >= 1 (got {episodes})")
    if min_success_ratio is not None and not 0 < min_success_ratio <= 1.5:
        raise BadInputError(f"--min-success-ratio must be in (0, 1.5] (got {min_success_ratio})")
    source = load(model) if isinstance(model, str) else model
    _check_kind(source, task)
    teacher_src = _teacher(source, teacher)
    if min_success_ratio is not None and teacher_src is None:
        raise BadInputError(
            f"--min-success-ratio needs a teacher: {source.ref} records no PyTorch source; "
            "pass --teacher REF"
        )
    cand = rollout(source, task, episodes, seed, program)
    ref = rollout(teacher_src, task, episodes, seed, program) if teacher_src else None
    result = EvalResult(cand, ref, {}, min_success_ratio)
    result.report = {
        "report": "edgekit.eval",
        "task": {
            "name": task.name,
            "env": task.gym_id,
            "summary": task.summary,
            "max_steps": task.max_steps,
            # what the model's actions drive: "torque", or "joint_position" (PD-tracked)
            "commands": task.commands[source.spec.kind],
        },
        "episodes": episodes,
        "seed": seed,
        "runtime": "onnxruntime CPU sessions of the model's ONNX networks, its loop program",
        "candidate": cand.to_dict(),
        "teacher": ref.to_dict() if ref else None,
        "success_ratio": result.ratio,
        "gate": {"min_success_ratio": min_success_ratio, "passed": result.passed},
    }
    if not result.passed:
        raise EvalGateFailed(
            f"success ratio {_fmt(result.ratio)} (candidate {cand.success_rate:.2f} vs teacher "
            f"{ref.success_rate if ref else 0:.2f}) < --min-success-ratio {min_success_ratio:g}",
            result,
        )
    return result


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _check_kind(source: Source, task: Any) -> None:
    if source.spec.kind not in task.kinds:
        raise BadInputError(
            f"{source.ref}: a {source.spec.kind} model cannot drive task {task.name!r} "
            f"(it takes: {', '.join(task.kinds)})"
        )


def _teacher(source: Source, teacher: str | Source | None) -> Source | None:
    if teacher is None:
        return None
    if not isinstance(teacher, str):
        return teacher
    if teacher != "auto":
        return load(teacher)
    origin = _torch_origin(getattr(source, "origin", None) or {})
    if origin is None:
        return None
    return load(origin["ref"], weights=origin.get("weights"))


def _torch_origin(info: dict[str, Any]) -> dict[str, Any] | None:
    """The first PyTorch model up an artifact's chain of sources (distill -> quantize...)."""
    while info:
        if info.get("type") == "torch" and str(info.get("ref", "")).startswith("zoo:"):
            return info
        info = info.get("origin") or info.get("source") or {}
    return None
