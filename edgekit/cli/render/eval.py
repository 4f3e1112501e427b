"""``edgekit eval``: teacher and candidate success side by side, and the gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgekit.cli.render import line, table, verdict

if TYPE_CHECKING:
    from edgekit.eval.api import EvalResult


def print_eval(result: EvalResult) -> None:
    """Teacher and candidate side by side: success with its 95% interval, return, tick time."""
    rep = result.report
    rows = []
    for label, key in (("teacher", "teacher"), ("candidate", "candidate")):
        r = rep.get(key)
        if not r:
            continue
        lo, hi = r["success_ci95"]
        rlo, rhi = r["return_ci95"]
        rows.append(
            [
                label,
                r["ref"],
                f"{r['successes']}/{r['episodes']} = {r['success_rate']:.2f}",
                f"[{lo:.2f}, {hi:.2f}]",
                f"{r['return_mean']:.2f} [{rlo:.2f}, {rhi:.2f}]",
                f"{r['tick_p50_ms']:.2f}" if r["tick_p50_ms"] is not None else "-",
            ]
        )
    task = rep["task"]
    table(
        f"closed loop: {task['name']} ({task['env']}), {rep['episodes']} episodes from seed "
        f"{rep['seed']}, onnxruntime; the model commands {task['commands'].replace('_', ' ')}"
        + ("s (PD-tracked)" if task["commands"] == "joint_position" else ""),
        ["policy", "model", "success", "95% CI (Wilson)", "return mean [95% CI]",
         "tick p50 ms (measured)"],
        rows,
    )  # fmt: skip
    paired = rep.get("paired")
    if paired:
        ret = paired["return"]
        lo, hi = ret["difference_ci95"]
        tests = ", ".join(
            f"{name} p={ret[key]:.3g}"
            for name, key in (("paired t", "t_test_p"), ("Wilcoxon", "wilcoxon_p"))
            if ret[key] is not None
        )
        line(f"paired on the same {paired['episodes']} seeds: success {paired['summary']}")
        line(
            f"paired return difference (candidate - teacher) {ret['mean_difference']:.2f} "
            f"[{lo:.2f}, {hi:.2f}] (t interval)" + (f", {tests}" if tests else "")
        )
    for note in rep.get("notes", []):
        line(f"note: {note}")
    ratio = result.ratio
    gate = rep["gate"]["min_success_ratio"]
    text = "success ratio " + ("n/a" if ratio is None else f"{ratio:.3f}")
    if gate is not None:
        text += f" (gate >= {gate:g})"
    else:
        text += " (set --min-success-ratio to gate it)"
    verdict(result.passed, text, gated=bool(result.gates))
