"""Render a bench report for people (the JSON report is the machine-readable form)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.cli.render import line, plain, si, table, verdict

if TYPE_CHECKING:  # renderers read results; importing them would import torch (distill)
    from edgekit.bench.api import BenchReport
    from edgekit.bench.estimated import EstimateReport
    from edgekit.distill.api import DistillResult
    from edgekit.quantize.api import QuantizeResult


def _host_cpu() -> str:
    from edgekit.isa import host_isa

    isa = host_isa()
    return f"{isa.model or isa.arch}, {isa.name}: {' '.join(isa.features) or '-'}"


def print_bench(r: BenchReport) -> None:
    s = r.stats
    m = r.model
    calls = " + ".join(f"{n} x{k}" for n, k in m["calls_per_tick"].items())
    rt = r.runtime
    line(f"{m['ref']}  program {m['program']} ({calls})")
    line(
        f"target {r.target.name}: MEASURED on this host ({_host_cpu()}), runtime "
        f"{rt['runtime']} {rt['version']}, "
        f"{rt['intra_op_threads']} threads"
        + (
            f", spinning {'on' if rt.get('allow_spinning') else 'off'}"
            if "allow_spinning" in rt
            else ""
        )
        + f", {r.ticks} ticks after {r.warmup} warm-up"
    )
    table(
        "whole-tick latency (ms)",
        ["p50", "p90", "p99", "max", "mean", "std", "jitter p99-p50", "deadline misses"],
        [
            [
                f"{s.p50:.3f}",
                f"{s.p90:.3f}",
                f"{s.p99:.3f}",
                f"{s.max:.3f}",
                f"{s.mean:.3f}",
                f"{s.std:.3f}",
                f"{s.jitter:.3f}",
                f"{s.deadline_misses}/{s.n} at {r.hz:g} Hz ({s.deadline_ms:.1f} ms)",
            ]
        ],
    )
    table(
        "per stage (per tick)",
        ["stage", "kind", "calls", "p50 ms", "mean ms", "share"],
        [
            [
                st.name,
                st.kind,
                str(st.calls),
                f"{st.p50_ms:.3f}",
                f"{st.mean_ms:.3f}",
                f"{st.share * 100:.1f}%",
            ]
            for st in r.stages
        ],
    )
    for note in r.notes:
        line(f"note: {note}")
    verdict(
        r.passed,
        f"{r.gate} {s.stat(r.gate):.3f} ms vs budget {r.budget_ms:.2f} ms ({r.budget_source})",
    )


def print_quantize(r: QuantizeResult) -> None:
    rep = r.report
    size = rep["size_bytes"]
    line(
        f"{rep['precision']} for {rep['target']}: scheme {rep['scheme']}, calibration "
        f"{rep['method']} on {rep['calibration']['calibration_samples']} samples of "
        f"{rep['calibration']['source']}, fidelity on {rep['calibration']['holdout_samples']} "
        "held-out ticks"
    )
    line(
        f"size: {size['fp32'] / 1e6:.2f} MB FP32 -> {size['quantized'] / 1e6:.2f} MB "
        f"({size['ratio'] * 100:.0f}%)"
    )
    fid = rep["fidelity"]
    table(
        f"whole-tick fidelity vs FP32 (measured on {fid['measured_on']})",
        ["scope", "program", "output", "max-abs", "rel-L2", "cosine", "agreement"],
        [[row["scope"], *_fidelity_cells(row)] for row in fid["rows"]],
    )
    lat = rep["latency"]
    if lat.get("measured"):
        line(
            f"speed (MEASURED on {lat['where']}): whole-tick p50 {lat['fp32_p50_ms']:.3f} ms FP32 "
            f"-> {lat['quantized_p50_ms']:.3f} ms ({lat['speedup']:.2f}x)"
        )
    else:
        line(f"speed: not measured ({lat.get('why', '')})")
    isa = rep.get("cpu_isa")
    if isa and isa.get("note"):
        line(f"note: {isa['note']}")
    if rep["kept_float"]:
        line(f"kept in float ({len(rep['kept_float'])}): {', '.join(rep['kept_float'])}")
    placement = rep["extra"].get("placement")
    if placement:
        for net, p in placement.items():
            fb = p.get("cpu_fallback", [])
            line(
                f"HTP placement {net}: {p.get('qnn_nodes')} of {p.get('total_nodes')} nodes on "
                f"QNN, {len(fb)} fell back to CPU" + (f": {fb}" if fb else "")
            )
    gate = (
        f"worst rel-L2 {r.error * 100:.2f}% vs --max-error {r.config.max_error * 100:.2f}%"
        if r.config.max_error is not None
        else f"worst rel-L2 {r.error * 100:.2f}% (no gate)"
    )
    verdict(r.passed, gate)


def _fidelity_cells(row: dict[str, Any]) -> list[str]:
    """program, output, max-abs, rel-L2, cosine, agreement of one fidelity row."""
    return [
        row["program"],
        row["output"],
        f"{row['max_abs']:.3g}",
        f"{row['rel_l2'] * 100:.2f}%",
        f"{row['cosine']:.5f}",
        "-" if row["agreement"] is None else f"{row['agreement'] * 100:.0f}%",
    ]


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write a ``--json`` report whole (its folder was checked before the command's work)."""
    import json

    from edgekit.destinations import write_text_atomic

    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n", "--json")


@contextmanager
def train_progress() -> Iterator[Any]:
    """A rich progress bar with the loss on a terminal; None (no output) in CI or when piped."""
    if plain():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}  held-out {task.fields[holdout]}"),
        TimeRemainingColumn(),
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int, metrics: dict[str, float]) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, loss="-", holdout="-")
        task = tasks[phase]
        bar.update(task, completed=done, loss=f"{metrics.get('loss', 0):.4g}")
        if "holdout" in metrics:
            bar.update(task, holdout=f"{metrics['holdout'] * 100:.2f}%")

    with bar:
        yield update


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
                    f"{lat['speedup']:.2f}x faster",
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
            [_fidelity_cells(row) for row in fid["rows"]],
        )
    head = fid["headline"]
    text = f"{head['metric']} {head['value'] * 100:.2f}%"
    if r.config.max_error is not None:
        text += f" vs --max-error {r.config.max_error * 100:.2f}%"
    else:
        text += " (no gate)"
    if r.out is not None and r.passed:
        text += f"; wrote {r.out}"
    verdict(r.passed, text)


def print_estimate(r: EstimateReport) -> None:
    m, e = r.model, r.estimate
    line(
        f"{m['ref']}  program {m['program']} ({_calls(m['calls_per_tick'])}) on {r.target.name} "
        f"({r.target.device}) at {e.precision.upper()}"
    )
    line(f"ESTIMATED, not measured: {r.target.name} is not this machine. Method: {e.method}.")
    table(
        "estimated network calls (roofline)",
        ["network", "calls", "ms per call", "GFLOP per call", "MB moved per call", "bound by"],
        [
            [
                c.network,
                str(c.calls),
                f"{c.ms_per_call:.3f}",
                f"{c.flops / 1e9:.3f}",
                f"{c.bytes / 1e6:.2f}",
                c.bound,
            ]
            for c in e.calls
        ],
    )
    line(
        f"estimated tick {r.tick_ms:.3f} ms = networks {e.network_ms:.3f} ms + host steps "
        f"{e.host_ms:.3f} ms (timed here)"
    )
    for note in r.notes:
        line(f"note: {note}")
    verdict(
        r.passed,
        f"ESTIMATED tick {r.tick_ms:.3f} ms vs budget {r.budget_ms:.2f} ms ({r.budget_source})",
    )


def _calls(calls: dict[str, int]) -> str:
    return " + ".join(f"{k} x{v}" for k, v in calls.items())


def print_qnn(r: Any) -> None:
    rep = r.report
    line(
        f"QNN context binaries for {rep['target']} (HTP v{rep['htp_arch']}, soc_model "
        f"{rep['soc_model']}) -> {r.out}"
    )
    for net, c in rep["contexts"].items():
        sizes = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in c["sizes"].items())
        line(f"  {net}: {sizes}; reloaded context vs QDQ max-abs {c['max_abs_diff']:.2e}")
    for net, fb in rep["cpu_fallback"].items():
        p = rep["placement"][net]
        line(
            f"  placement {net}: {p.get('qnn_nodes')} of {p.get('total_nodes')} nodes on QNN, "
            f"{len(fb)} fell back to CPU" + (f": {fb}" if fb else "")
        )
    fid = rep["fidelity"]
    table(
        f"whole-tick fidelity vs {fid['reference']} ({fid['measured_on']}, {fid['ticks']} ticks)",
        ["program", "output", "max-abs", "rel-L2", "cosine"],
        [
            [row["program"], row["output"], f"{row['max_abs']:.3g}",
             f"{row['rel_l2'] * 100:.2f}%", f"{row['cosine']:.5f}"]
            for row in fid["rows"]
        ],
    )  # fmt: skip
    need = rep["device_needs"]
    line(
        f"device needs: QNN SDK {need.get('qnn_sdk')}, onnxruntime {need.get('onnxruntime')}, "
        f"onnxruntime-qnn {need.get('onnxruntime_qnn')}"
    )
    line("latency: not measured (the HTP simulator's time is not device latency)")
    st = rep["strict"]
    verdict(
        st["passed"] or not st["enabled"],
        "; ".join(st["problems"]) or f"no CPU fallback, worst rel-L2 {fid['worst_rel_l2']:.2%}",
    )


def print_tensorrt(r: Any) -> None:
    rep = r.report
    line(f"TensorRT-ready ONNX for {rep['target']} at {rep['precision'].upper()} -> {r.out}")
    for net, info in rep["networks"].items():
        shapes = "static shapes" if info["static_shapes"] else f"profile {info['profile']}"
        kept = ", ".join(info["fp32_kept_ops"]) or "-"
        qdq = "explicit Q/DQ" if info["explicit_qdq"] else "no Q/DQ"
        line(f"  {net}: {info['onnx']}, {shapes}, {qdq}, kept FP32: {kept}")
    line(f"op check: passed ({rep['op_check']['source']})")
    fid = rep["fidelity"]
    if fid.get("checked"):
        line(
            f"fidelity ({fid['measured_on']}, {fid['ticks']} ticks): worst whole-tick rel-L2 "
            f"{fid['worst_rel_l2']:.3%}"
        )
    else:
        line(f"fidelity: not checked here ({fid.get('why', 'skipped')})")
    if rep["built"]:
        line(f"engines built with TensorRT {rep['tensorrt_version']} on {rep['gpu']}")
    else:
        line("engines: not built here (no TensorRT/GPU); build plan (build_engines.sh):")
        for cmd in rep["plan"]["trtexec"]:
            line(f"  {cmd}")
        line(f"  or: {rep['plan']['edgekit']}")


@contextmanager
def run_progress(quiet: bool) -> Iterator[tuple[Any, Any]]:
    """(on_event, distill_progress) for ``edgekit run``: on a terminal one live rich display
    (a spinner per stage, the distillation bar with loss and held-out error); in CI or when
    piped a plain line per stage; nothing when quiet."""
    if quiet:
        yield None, None
        return
    if plain():

        def on_line(event: str, d: dict[str, Any]) -> None:
            if event == "stage-start":
                line(f"[{d['index'] + 1}/{d['total']}] {d['stage']} ...")
            elif event == "stage-end":
                line(f"      {d['status']} in {d['seconds']:.1f} s: {d['summary']}")
            elif event == "bench-target":
                line(f"      bench {d['target']} on {d['artifact']}")

        yield on_line, None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # redrawn on events only: a refresh thread would wake during timed ticks and steal a core
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        auto_refresh=False,
    )
    tasks: dict[str, Any] = {}

    def on_event(event: str, d: dict[str, Any]) -> None:
        if event == "stage-start":
            desc = f"[{d['index'] + 1}/{d['total']}] {d['stage']}"
            tasks["stage"] = bar.add_task(desc, total=None, info="")
        elif event == "bench-target":
            bar.update(tasks["stage"], info=f"bench {d['target']}")
        elif event == "stage-end":
            info = f"{d['status']}: {d['summary']}"
            bar.update(tasks["stage"], total=1, completed=1, info=info[:100])
        bar.refresh()

    def on_train(phase: str, done: int, total: int, metrics: dict[str, float]) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(f"      {phase}", total=total, info="")
        info = f"loss {metrics.get('loss', 0):.4g}"
        if "holdout" in metrics:
            info += f"  held-out {metrics['holdout'] * 100:.2f}%"
        bar.update(tasks[phase], completed=done, info=info)
        bar.refresh()

    with bar:
        yield on_event, on_train


def _gate_number(x: float | None, unit: str, ms_fmt: str, pct_fmt: str) -> str:
    """A gate's value or limit: milliseconds as they are, ratios as percentages."""
    if x is None:
        return "-"
    return f"{x:{ms_fmt}} ms" if unit == "ms" else f"{x * 100:{pct_fmt}}%"


def print_run(result: Any) -> None:
    """The final summary of ``edgekit run``: every gate, the verdict and the report files."""
    rep = result.report
    rows = []
    for g in rep["gates"]:
        shown = _gate_number(g["value"], g["unit"], ".3g", ".2f")
        lim = _gate_number(g["limit"], g["unit"], "g", "g")
        rows.append(
            [g["name"], shown, lim, g["evidence"] or "-", g["status"].upper(), g["message"]]
        )
    table(
        f"edgekit run {rep['recipe']['name']} ({rep['model']})",
        ["gate", "value", "limit", "evidence", "verdict", "note"],
        rows,
    )
    for key, path in result.files.items():
        if not key.startswith("plot:"):
            line(f"{key}: {path}")
    n_failed = sum(g["status"] == "failed" for g in rep["gates"])
    text = f"{len(rep['gates'])} gate(s), {n_failed} failed, in {rep['seconds']:.1f} s" + (
        f"; stopped: {rep['error']}" if rep.get("error") else ""
    )
    verdict(bool(rep["passed"]), text)


def print_eval(result: Any) -> None:
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
    ratio = result.ratio
    gate = rep["gate"]["min_success_ratio"]
    text = "success ratio " + ("n/a" if ratio is None else f"{ratio:.3f}")
    if gate is not None:
        text += f" (gate >= {gate:g})"
    verdict(result.passed, text)
