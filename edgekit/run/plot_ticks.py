"""Where a tick's time goes, in ``edgekit run`` reports: latency over tick index, and per stage.

The tick-index plot shows what a CDF hides: a slow warm-up (the warm-up ticks, timed but not in
the statistics, are drawn greyed at negative indices), periodic spikes (the ticks that ran the
networks when an action-chunk queue serves the others are marked: a 5 ms p99 over a 0.2 ms p50
is often every eighth tick planning), and drift (a rolling median). The per-stage plot stacks
each target's mean tick by stage: pre-processing, each network (all its calls in the tick), host
maths between calls, post-processing, and what no stage accounts for; an estimated target's bar
is its roofline's networks plus the host steps as timed here, hatched and labelled.

Both read a run report's ``targets`` entries (``report`` holds the bench report), as
:func:`edgekit.run.plot.write_plots` passes them; matplotlib is imported by the figure helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.run.plot import _ms, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_LOG_RATIO = 10.0


def tick_plottable(entry: dict[str, Any]) -> bool:
    """Whether a run report's target entry has timed ticks (a measured target)."""
    return bool(entry.get("samples_ms"))


def _set_ylim(ax: Axes, values: list[float]) -> None:
    low, high = min(values), max(values)
    if low > 0 and high / low > _LOG_RATIO:
        from matplotlib.ticker import ScalarFormatter

        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, high * 1.5)
        ax.yaxis.set_major_formatter(ScalarFormatter())
    else:
        ax.set_ylim(0.0, high * 1.1 if high > 0 else 1.0)


def ticks_figure(
    title: str,
    samples_ms: list[float] | np.ndarray,
    *,
    warmup_ms: list[float] | np.ndarray | None = None,
    planning_ticks: list[int] | None = None,
    budget_ms: float | None = None,
    stats: dict[str, Any] | None = None,
) -> Figure:
    """Every timed tick's latency in the order it ran, with the warm-up before it.

    Args:
        title: The axes title.
        samples_ms: Timed ticks, in order (tick 0 is the first timed one).
        warmup_ms: The warm-up ticks before them, drawn at negative indices and greyed.
        planning_ticks: Indices of the ticks that ran the networks, when an action-chunk queue
            serves the others (None: every tick did).
        budget_ms: The tick budget (a red dashed line, ``gid="budget"``).
        stats: The bench's ``stats_ms`` (its p50 / p99 are drawn; else computed here).

    Returns:
        A Figure; artists carry gids: ``ticks``, ``warmup``, ``warmup-span``, ``planning``,
        ``rolling-median``, ``p50``, ``p99``, ``budget``.
    """
    ticks = np.asarray(samples_ms, dtype=float)
    if ticks.size == 0:
        raise ValueError("no timed ticks to plot")
    warm = np.asarray(warmup_ms if warmup_ms is not None else [], dtype=float)
    fig = new_figure((7.0, 3.5))
    ax = fig.add_subplot()
    index = np.arange(ticks.size)
    ax.plot(index, ticks, color="tab:blue", linewidth=0.8, marker=".", markersize=3,
            label=f"timed ticks ({ticks.size})", gid="ticks")  # fmt: skip
    ys = [float(ticks.min()), float(ticks.max())]
    if warm.size:
        ax.plot(np.arange(-warm.size, 0), warm, color="0.55", linewidth=0.8, marker=".",
                markersize=3, label=f"warm-up ({warm.size}, not in the statistics)",
                gid="warmup")  # fmt: skip
        ax.axvspan(-warm.size - 0.5, -0.5, color="0.85", alpha=0.5, gid="warmup-span")
        ys += [float(warm.min()), float(warm.max())]
    if planning_ticks is not None and len(planning_ticks):
        idx = np.asarray(planning_ticks, dtype=int)
        idx = idx[(idx >= 0) & (idx < ticks.size)]
        ax.plot(idx, ticks[idx], "o", color="tab:orange", markersize=4, fillstyle="none",
                label=f"ran the networks ({idx.size}; the others pop a queued action)",
                gid="planning")  # fmt: skip
    window = max(5, ticks.size // 20)
    if ticks.size >= 2 * window:  # drift: a rolling median over ~5% of the run
        rolled = np.array(
            [np.median(ticks[i : i + window]) for i in range(ticks.size - window + 1)]
        )
        ax.plot(index[window - 1 :], rolled, color="black", linewidth=1.2,
                label=f"rolling median ({window} ticks)", gid="rolling-median")  # fmt: skip
    stats = stats or {}
    for name, q, color in (("p50", 50, "tab:green"), ("p99", 99, "tab:orange")):
        value = stats.get(name)
        value = float(value) if value is not None else float(np.percentile(ticks, q))
        ax.axhline(value, color=color, linestyle=":", label=f"{name} {_ms(value)} ms", gid=name)
    if budget_ms is not None:
        ax.axhline(float(budget_ms), color="red", linestyle="--",
                   label=f"budget {_ms(float(budget_ms))} ms", gid="budget")  # fmt: skip
        ys.append(float(budget_ms))
    _set_ylim(ax, ys)
    ax.set_xlabel("tick index (warm-up before 0)")
    ax.set_ylabel("tick latency (ms)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize="x-small")
    return fig


def tick_entry_figure(target: str, entry: dict[str, Any]) -> Figure:
    """:func:`ticks_figure` of one measured target of a run report."""
    bench = entry.get("report") or {}
    n = len(entry.get("samples_ms") or [])
    return ticks_figure(
        f"{target}: tick latency in run order (measured, {n} ticks)",
        entry["samples_ms"],
        warmup_ms=bench.get("warmup_samples_ms"),
        planning_ticks=bench.get("planning_ticks"),
        budget_ms=entry.get("budget_ms"),
        stats=entry.get("stats_ms"),
    )


def stage_bars(entry: dict[str, Any]) -> tuple[list[tuple[str, str, float]], bool] | None:
    """One target's mean tick by stage: ``[(stage, label, ms)]`` and whether it is estimated.

    A measured bench report has ``stages`` (mean ms per tick each, in tick order, ``other``
    last); an estimate has its network calls and the host steps. None: nothing to stack.
    """
    bench = entry.get("report") or {}
    if bench.get("stages"):
        rows = []
        for s in bench["stages"]:
            if s["kind"] == "network":
                label = f"{s['name']} (network x{s['calls']})"
            elif s["name"] == "other":
                label = "other (not in a stage)"
            else:
                label = f"{s['name']} (host)"
            rows.append((str(s["name"]), label, float(s["mean_ms"])))
        return rows, False
    est = bench.get("estimate") or {}
    if est.get("calls") is not None:
        rows = [
            (str(c["network"]), f"{c['network']} (network x{c['calls']})",
             float(c["ms_per_call"]) * int(c["calls"]))
            for c in est["calls"]
        ]  # fmt: skip
        rows.append(("host steps", "host steps (timed here)", float(est.get("host_ms") or 0.0)))
        return rows, True
    return None


def stages_figure(targets: dict[str, Any]) -> Figure | None:
    """Stacked horizontal bars of each target's mean tick by stage, with each budget.

    Args:
        targets: A run report's ``targets`` dict.

    Returns:
        A Figure (one bar per target with a breakdown; estimated bars hatched), or None when no
        target has one. Segments have ``gid="stage:<name>"``, budgets ``gid="budget"``.
    """
    bars = {t: b for t, e in targets.items() if e and (b := stage_bars(e)) is not None}
    if not bars:
        return None
    from matplotlib import colormaps

    palette = [colormaps["tab20"](i) for i in range(20)]
    colors: dict[str, Any] = {}
    fig = new_figure((7.0, 1.6 + 0.7 * len(bars)))
    ax = fig.add_subplot()
    labelled: set[str] = set()
    names = []
    # A budget far past the bars would squeeze them into a sliver: it is only written then.
    base = 1.15 * max(sum(ms for *_, ms in rows) for rows, _ in bars.values()) or 1.0
    xmax = base
    for y, (target, (rows, estimated)) in enumerate(bars.items()):
        left = 0.0
        for stage, label, ms in rows:
            color = colors.setdefault(stage, palette[len(colors) % len(palette)])
            legend = label if label not in labelled else "_nolegend_"
            labelled.add(label)
            ax.barh(y, ms, left=left, color=color, edgecolor="white", linewidth=0.5,
                    hatch="//" if estimated else None, label=legend,
                    gid=f"stage:{stage}")  # fmt: skip
            left += ms
        budget = targets[target].get("budget_ms")
        if budget is not None and float(budget) <= 1.5 * base:
            ax.vlines(float(budget), y - 0.45, y + 0.45, colors="red", linestyles="--",
                      gid="budget")  # fmt: skip
            xmax = max(xmax, 1.05 * float(budget))
        total = f"{_ms(left)} ms" + (" estimated" if estimated else " mean")
        limit = "" if budget is None else f"\nbudget {_ms(float(budget))} ms"
        names.append(f"{target}\n({total}){limit}")
    ax.set_xlim(0.0, xmax)
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("ms per tick (measured: mean over the timed ticks; red dashes: budget)")
    ax.set_title("where the tick goes, by stage")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small")
    return fig
