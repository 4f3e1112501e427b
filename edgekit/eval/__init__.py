"""``edgekit eval``: does the compressed policy still do the task? Closed loop, in simulation.

    result = edgekit.eval("out/dp-int8", EvalConfig(episodes=50, min_success_ratio=0.9))
    result.passed, result.candidate.success_rate, result.teacher.success_rate, result.ratio

``envs`` is the task registry (gymnasium + MuJoCo), ``runner`` the seeded episodes through
onnxruntime, ``api`` the teacher-vs-candidate comparison and its gate.
"""

from edgekit._callable import make_callable
from edgekit.eval.api import EvalResult, evaluate
from edgekit.eval.config import EvalConfig
from edgekit.eval.envs import TASKS, get_task
from edgekit.eval.runner import Episode, PolicyEval, wilson

__all__ = [
    "TASKS",
    "Episode",
    "EvalConfig",
    "EvalResult",
    "PolicyEval",
    "evaluate",
    "get_task",
    "wilson",
]

make_callable(__name__, evaluate)
