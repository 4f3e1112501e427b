"""Latency plots for ``edgekit run``: PNGs in the run folder, linked from the Markdown summary.

A measured target is drawn as the empirical CDF of every timed tick, so the tail that decides a
p99 budget is visible; an estimated target has no distribution, only a single roofline number,
and is drawn as one line so that nobody reads a spread into it, inside an *assumption band*:
the tick if the target's efficiency factors (share of peak compute and bandwidth, dispatch
costs) were off by up to 2x either way. The band is a stated what-if, not a confidence
interval. Both show the budget. :func:`write_plots` adds the tick-index and per-stage plots
(:mod:`edgekit.run.plot_ticks`) and the variants' error and success vs latency
(:mod:`edgekit.run.plot_variants`).

matplotlib is imported inside the functions: it costs ~0.5 s and is only needed when plots are
written. Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas rather than through
pyplot, so nothing is registered in pyplot's global figure list (no leak, no ``plt.close``
needed) and the caller's backend choice is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.destinations import save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE = (6.0, 3.5)
DPI = 100
# Beyond this budget-to-latency ratio a linear axis squeezes the distribution into a few pixels
# at the left edge; a log axis keeps both the ticks and the budget readable.
_LOG_RATIO = 10.0


def _ms(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _samples(entry: dict[str, Any]) -> np.ndarray:
    values = np.asarray(entry.get("samples_ms") or [], dtype=float)
    return values[np.isfinite(values)]


def _estimate(entry: dict[str, Any]) -> float | None:
    value = entry.get("estimated_ms")
    return float(value) if value is not None else None


def plottable(entry: dict[str, Any]) -> bool:
    """Whether a target entry has anything to plot (timed samples or an estimate).

    Args:
        entry: One value of the report's ``targets`` dict.

    Returns:
        False for targets that were skipped (neither samples nor an estimate).
    """
    return _samples(entry).size > 0 or _estimate(entry) is not None


# The roofline's efficiency factors are assumptions (edgekit/targets/<family>.py); the band
# shows the tick if they were off by this factor either way. Every network term of the roofline
# (compute, memory, dispatch) scales with them, the host steps (timed here) do not.
ASSUMED_SPREAD = 2.0


def assumption_band(entry: dict[str, Any], spread: float = ASSUMED_SPREAD) -> tuple[float, float]:
    """The estimated tick if the target's efficiency factors were off by ``spread`` either way.

    Args:
        entry: A run report's ``targets[target]`` dict of an estimated target (its ``report``
            holds the bench estimate: ``estimate.network_ms`` and ``estimate.host_ms``).
        spread: The factor the efficiency factors and dispatch costs may be off by.

    Returns:
        ``(low, high)`` in ms: networks x 1/spread .. x spread, plus the host steps as timed.

    Raises:
        ValueError: The entry carries no estimate breakdown.
    """
    est = (entry.get("report") or {}).get("estimate") or {}
    if est.get("network_ms") is None:
        raise ValueError("no estimate breakdown (estimate.network_ms) in this target's report")
    network, host = float(est["network_ms"]), float(est.get("host_ms") or 0.0)
    return host + network / spread, host + network * spread


def new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """A Figure on its own Agg canvas (not registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _set_xlim(ax: Axes, values: list[float]) -> None:
    """Fit the x axis to the latencies and the budget, switching to log for far-apart values."""
    low, high = min(values), max(values)
    if low > 0 and high / low > _LOG_RATIO:
        from matplotlib.ticker import ScalarFormatter

        ax.set_xscale("log")
        ax.set_xlim(low / 1.5, high * 1.5)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # "10", not "10^1", for milliseconds
    else:
        ax.set_xlim(0.0, high * 1.1 if high > 0 else 1.0)


def latency_figure(target: str, entry: dict[str, Any]) -> Figure:
    """Draw one target's whole-tick latency against its budget.

    Args:
        target: Target name (``cpu``, ``qcs6490``, ...), used in the title.
        entry: The report's ``targets[target]`` dict: ``budget_ms``, ``samples_ms`` and
            ``stats_ms`` for a measured target, ``estimated_ms`` for an estimated one.

    Returns:
        A matplotlib Figure on an Agg canvas. The budget line has ``gid="budget"``.

    Raises:
        ValueError: If the entry has neither samples nor an estimate (a skipped target).
    """
    samples, estimate = _samples(entry), _estimate(entry)
    if samples.size == 0 and estimate is None:
        raise ValueError(f"target {target!r} has no latency samples and no estimate to plot")
    budget = entry.get("budget_ms")

    fig = new_figure()
    ax = fig.add_subplot()
    xs: list[float] = []

    if samples.size:
        ordered = np.sort(samples)
        fraction = np.arange(1, ordered.size + 1) / ordered.size
        ax.step(ordered, fraction, where="post", color="tab:blue", label="CDF of ticks")
        # Prefer the runner's statistics so the plot and the tables quote the same numbers.
        stats = entry.get("stats_ms") or {}
        for name, q, color in (("p50", 50, "tab:green"), ("p99", 99, "tab:orange")):
            value = float(stats[name]) if stats.get(name) is not None else None
            if value is None:
                value = float(np.percentile(ordered, q))
            ax.axvline(value, color=color, linestyle=":", gid=name)
            ax.plot([value], [q / 100], "o", color=color, label=f"{name} {_ms(value)} ms")
        ax.set_ylim(0.0, 1.02)
        ax.set_ylabel("fraction of ticks ≤ x")
        ax.set_title(f"{target}: whole-tick latency (measured, {ordered.size} ticks)")
        xs += [float(ordered[0]), float(ordered[-1])]
    elif estimate is not None:
        label = f"estimated {_ms(estimate)} ms (roofline, no distribution)"
        ax.axvline(estimate, color="tab:blue", linewidth=2, label=label, gid="estimate")
        ax.set_yticks([])  # there is no distribution, so no y quantity to read
        ax.set_title(f"{target}: whole-tick latency (estimated)")
        xs.append(estimate)
        try:
            low, high = assumption_band(entry)
        except ValueError:
            pass  # an entry without the estimate's breakdown: the line alone
        else:
            band = (
                f"assumption band {_ms(low)}-{_ms(high)} ms\n(efficiency factors off by "
                f"{ASSUMED_SPREAD:g}x; not a confidence interval)"
            )
            ax.axvspan(low, high, color="tab:blue", alpha=0.15, label=band, gid="assumption-band")
            xs += [low, high]

    if budget is not None:
        budget = float(budget)
        ax.axvline(
            budget, color="red", linestyle="--", label=f"budget {_ms(budget)} ms", gid="budget"
        )
        xs.append(budget)
    _set_xlim(ax, xs)
    ax.set_xlabel("tick latency (ms)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


def _filename(target: str) -> str:
    # Target names are slugs today; guard against a path separator ever reaching the file name.
    return f"latency-{re.sub(r'[^A-Za-z0-9._-]', '_', target)}.png"


def write_latency_plots(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write ``latency-<target>.png`` for every target that has samples or an estimate.

    Args:
        report: The ``edgekit run`` report dict (schema ``edgekit.run/1``).
        folder: Folder to write into; created if missing.

    Returns:
        ``{target: file name}`` (relative to ``folder``) for the plots written; skipped
        targets are left out.
    """
    folder = Path(folder)
    written: dict[str, str] = {}
    for target, entry in (report.get("targets") or {}).items():
        if not entry or not plottable(entry):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        name = _filename(target)
        fig = latency_figure(target, entry)
        save_figure(fig, folder / name, DPI)
        written[target] = name
    return written


def write_plots(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """Every plot of an ``edgekit run`` report: the CDFs (:func:`write_latency_plots`), each
    measured target's latency over tick index, the per-stage stacked bars of all targets, and
    the variants' error / task success vs latency when the recipe made several.

    Args:
        report: The ``edgekit run`` report dict (schema ``edgekit.run/1``).
        folder: Folder to write into; created if missing.

    Returns:
        ``{key: file name}`` relative to ``folder``: ``<target>`` for a CDF,
        ``<target> per tick`` (``ticks-<target>.png``), ``per-stage`` (``stages.png``) and
        ``variants`` (``variants.png``); plots with nothing to draw are left out.
    """
    from edgekit.run.plot_ticks import stages_figure, tick_entry_figure, tick_plottable
    from edgekit.run.plot_variants import run_variants, variants_figure

    folder = Path(folder)
    written = write_latency_plots(report, folder)
    figures: list[tuple[str, str, Figure]] = []
    targets = report.get("targets") or {}
    for target, entry in targets.items():
        if entry and tick_plottable(entry):
            name = f"ticks-{_filename(target).removeprefix('latency-')}"
            figures.append((f"{target} per tick", name, tick_entry_figure(target, entry)))
    stages = stages_figure(targets)
    if stages is not None:
        figures.append(("per-stage", "stages.png", stages))
    variants = run_variants(report)
    if len(variants) >= 2:
        title = f"{(report.get('recipe') or {}).get('name') or 'recipe'}: variants"
        figures.append(("variants", "variants.png", variants_figure(variants, title)))
    for key, name, fig in figures:
        folder.mkdir(parents=True, exist_ok=True)
        save_figure(fig, folder / name, DPI)
        written[key] = name
    return written
