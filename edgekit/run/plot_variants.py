"""The variants a recipe (or ``edgekit compare``) produced: error and task success vs latency.

Every error is the one its stage recorded, against that stage's own reference (distillation:
the teacher; quantization: the FP32 model it quantized; an artifact's manifest says which), so
errors of different stages are not one scale. A recipe's stages are drawn as arrows from their
input (its own reference: error 0) to their output; ``edgekit compare`` draws each artifact as a
point with its p50's 95% interval. Task success (``eval`` stage) is drawn with its Wilson 95%
interval against the tick p50 measured in the closed loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgekit.run.plot import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass
class Variant:
    """One model variant: its latency and what it keeps (error and/or task success)."""

    name: str
    latency_ms: float
    latency_ci: tuple[float, float] | None = None
    error: float | None = None  # a fraction (rel-L2, mean-abs of the action range...)
    metric: str | None = None
    reference: str | None = None  # what ``error`` was measured against
    parent: str | None = None  # the variant it was made from (an arrow in the plot)
    success: float | None = None
    success_ci: tuple[float, float] | None = None
    latency_source: str = "measured"

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def run_variants(report: dict[str, Any]) -> list[Variant]:
    """The variants of an ``edgekit run`` report, from its stages' own reports.

    A distill or quantize stage whose latency check ran gives its input (error 0: it is the
    stage's reference) and its output (the stage's recorded error, ``parent`` the input), both
    timed on this host by the stage; an eval stage gives teacher and candidate task success.
    """
    out: list[Variant] = []
    for s in report.get("stages") or []:
        rep, stage = s.get("report") or {}, s.get("stage")
        lat = rep.get("latency") or {}
        fid = rep.get("fidelity") or {}
        n = f"{stage} (stage {int(s.get('index', len(out))) + 1})"
        if stage == "distill" and lat.get("measured"):
            head = fid.get("headline") or {}
            src = Variant(f"{n}: teacher (input)", float(lat["teacher_p50_ms"]), error=0.0)
            out += [src, Variant(f"{n}: student", float(lat["student_p50_ms"]),
                                 error=_num(head.get("value")), metric=head.get("metric"),
                                 reference="teacher", parent=src.name)]  # fmt: skip
        elif stage == "quantize" and lat.get("measured"):
            src = Variant(f"{n}: FP32 input", float(lat["fp32_p50_ms"]), error=0.0)
            what = f"{rep.get('precision', '')} for {rep.get('target', '')}".strip()
            out += [src, Variant(f"{n}: {what}", float(lat["quantized_p50_ms"]),
                                 error=_num(fid.get("worst_rel_l2")), metric="rel_l2",
                                 reference="FP32 input", parent=src.name)]  # fmt: skip
        elif stage == "eval":
            for key in ("teacher", "candidate"):
                r = rep.get(key) or {}
                if r.get("tick_p50_ms") is None:
                    continue
                ci = r.get("success_ci95")
                out.append(
                    Variant(f"{n}: {key}", float(r["tick_p50_ms"]), success=r.get("success_rate"),
                            success_ci=(float(ci[0]), float(ci[1])) if ci else None,
                            latency_source="measured in the closed loop")
                )  # fmt: skip
    return out


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _log_x(ax: Axes, xs: list[float]) -> None:
    if xs and min(xs) > 0 and max(xs) / min(xs) > 10.0:
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())


def _xerr(v: Variant) -> list[list[float]] | None:
    if v.latency_ci is None:
        return None
    lo, hi = v.latency_ci
    return [[max(0.0, v.latency_ms - lo)], [max(0.0, hi - v.latency_ms)]]


def _color(i: int) -> Any:
    from matplotlib import colormaps

    return colormaps["tab10"](i % 10)


def _number(ax: Axes, i: int, x: float, y: float) -> None:
    """A point's number next to it; its legend entry says what it is (labels never overlap)."""
    ax.annotate(str(i + 1), (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")


def _error_panel(ax: Axes, variants: list[Variant]) -> None:
    by_name = {v.name: v for v in variants}
    for i, v in enumerate(variants):
        if v.error is None:
            continue
        reference = v.error == 0.0 and v.reference is None
        if reference:
            label = f"{i + 1}. {v.name}: reference"
        else:
            metric = (v.metric or "error").replace("_", "-")
            against = f" vs {v.reference}" if v.reference else ""
            label = f"{i + 1}. {v.name}: {metric} {v.error * 100:.3g}%{against}"
        ax.errorbar([v.latency_ms], [v.error * 100], xerr=_xerr(v), fmt="s" if reference else "o",
                    color=_color(i), capsize=3, markersize=5, label=label,
                    gid=f"variant:{v.name}")  # fmt: skip
        _number(ax, i, v.latency_ms, v.error * 100)
        parent = by_name.get(v.parent or "")
        if parent is not None and parent.error is not None:
            ax.annotate("", (v.latency_ms, v.error * 100), (parent.latency_ms, parent.error * 100),
                        arrowprops={"arrowstyle": "->", "color": "0.4", "alpha": 0.6},
                        gid="arrow")  # fmt: skip
    ax.set_ylabel("error vs its reference (%)")
    ax.margins(x=0.15, y=0.15)
    ax.set_title("fidelity (each vs its stage's reference; squares: references)", fontsize="small")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize="x-small", frameon=False)


def _success_panel(ax: Axes, variants: list[Variant]) -> None:
    for i, v in enumerate(variants):
        if v.success is None:
            continue
        yerr = None
        if v.success_ci is not None:
            yerr = [
                [max(0.0, v.success - v.success_ci[0])],
                [max(0.0, v.success_ci[1] - v.success)],
            ]
        ax.errorbar([v.latency_ms], [v.success], xerr=_xerr(v), yerr=yerr, fmt="o",
                    color=_color(i), capsize=3, label=f"{i + 1}. {v.name}: {v.success:.2f}",
                    gid=f"success:{v.name}")  # fmt: skip
        _number(ax, i, v.latency_ms, v.success)
    ax.set_ylim(-0.02, 1.08)
    ax.margins(x=0.15)
    ax.set_ylabel("task success (Wilson 95%)")
    ax.set_title("closed-loop task success", fontsize="small")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize="x-small", frameon=False)


def variants_figure(variants: list[Variant], title: str, xlabel: str | None = None) -> Figure:
    """Error (and task success, where measured) against latency, one point per variant.

    Args:
        variants: The variants (:func:`run_variants`, or ``edgekit compare``'s).
        title: The figure title.
        xlabel: The latency axis label (default: whole-tick p50 on this host).

    Returns:
        A Figure with one panel for errors and one for task success (each only when some
        variant has one). Points have ``gid="variant:<name>"`` / ``"success:<name>"``.

    Raises:
        ValueError: No variant has an error or a task success to draw.
    """
    panels = [
        (draw, [v for v in variants if getattr(v, attr) is not None])
        for draw, attr in ((_error_panel, "error"), (_success_panel, "success"))
    ]
    panels = [(draw, vs) for draw, vs in panels if vs]
    if not panels:
        raise ValueError("no variant has an error or a task success to plot")
    fig = new_figure((6.5 * len(panels), 3.6 + 0.2 * max(len(vs) for _, vs in panels)))
    for i, (draw, vs) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        draw(ax, vs)
        _log_x(ax, [v.latency_ms for v in vs])
        ax.set_xlabel(xlabel or "whole-tick p50 (ms, measured on this host)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    return fig
