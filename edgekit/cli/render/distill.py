"""``edgekit distill``: the training progress bar, then teacher vs student and the gate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from edgekit.cli.render import fidelity_cells, line, si, table, verdict, warning_lines
from edgekit.cli.render.progress import shown

if TYPE_CHECKING:
    from edgekit.distill.api import DistillResult


@contextmanager
def train_progress(quiet: bool = False) -> Iterator[Any]:
    """Show the distillation's progress (loading, training with loss and held-out error and a
    steady ETA, export, fidelity: see :mod:`edgekit.cli.render.progress`); yields None, the
    ``progress`` callback :func:`edgekit.distill.distill` takes: it reports through
    :mod:`edgekit.progress`."""
    with shown("distill", quiet):
        yield None


def print_distill(r: DistillResult) -> None:
    rep = r.report
    t, s = rep["teacher"], rep["student"]
    tr = rep["training"]
    line(f"student: {s['how']}")
    line(f"method: {rep['method']}")
    line(
        f"training: {tr['steps']} steps x {tr['batch_size']} rows in {tr['seconds']:.1f} s on "
        f"{tr['processes']} process(es) ({tr['backend']}, {tr['device']}), loss "
        f"{tr['loss_first']:.4g} -> {tr['loss_last']:.4g}"
        + (f", resumed at step {tr['resumed_from']}" if tr["resumed_from"] else "")
    )
    lat = rep.get("latency", {})
    table(
        "teacher vs student",
        ["", "teacher", "student", "ratio"],
        [
            ["params", si(t["params"]), si(s["params"]), f"{s['params'] / t['params']:.2f}"],
            [
                "FLOPs per tick",
                si(t["flops_per_tick"]),
                si(s["flops_per_tick"]),
                f"{s['flops_per_tick'] / max(t['flops_per_tick'], 1):.2f}",
            ],
            [
                "network calls per tick",
                str(sum(t["calls_per_tick"].values())),
                str(sum(s["calls_per_tick"].values())),
                "",
            ],
        ]
        + (
            [
                [
                    "tick p50 (MEASURED, ms)",
                    f"{lat['teacher_p50_ms']:.3f}",
                    f"{lat['student_p50_ms']:.3f}",
                    _speed(lat["speedup"]),
                ]
            ]
            if lat.get("measured")
            else []
        ),
    )
    if lat.get("measured"):
        line(f"latency: {lat['method']}, {lat['where']}, {lat['threads']} threads")
    fid = rep["fidelity"]
    if rep["mode"] == "steps":
        rows = [
            [
                name,
                f"{e['mean_abs'] * 100:.2f}%",
                f"{e['max_abs'] * 100:.2f}%",
                f"{e['rel_l2'] * 100:.2f}%",
                f"{e['cosine']:.4f}",
            ]
            for name, e in (
                ("student", fid["student"]),
                (fid["undistilled_baseline"]["what"], fid["undistilled_baseline"]),
            )
        ]
        table(
            f"fidelity ({fid['measured_on']}): {fid['scope']}",
            ["sampler", "mean-abs", "max-abs", "rel-L2", "cosine"],
            rows,
        )
    else:
        table(
            f"whole-tick fidelity, student vs teacher ({fid['measured_on']}; {fid['scope']})",
            ["program", "output", "max-abs", "rel-L2", "cosine", "agreement"],
            [fidelity_cells(row) for row in fid["rows"]],
        )
    head = fid["headline"]
    text = f"{head['metric']} {head['value'] * 100:.2f}%"
    for key in ("token_agreement", "choice_agreement"):
        if fid.get("metrics", {}).get(key) is not None:
            text += f", {key.replace('_', ' ')} {fid['metrics'][key] * 100:.1f}%"
    if r.config.max_error is not None:
        text += f" vs --max-error {r.config.max_error}"
    else:
        text += " (set --max-error to gate it)"
    if r.out is not None and r.passed:
        text += f"; wrote {r.out}"
    warning_lines(r.warnings)
    verdict(r.passed, text, gated=bool(r.gates))


def _speed(speedup: float | None) -> str:
    if not speedup:
        return "-"
    return f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x SLOWER"
