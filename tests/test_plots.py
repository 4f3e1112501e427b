"""The plots of ``edgekit run`` and ``edgekit compare``: tick index, per stage, variants, the
estimate's assumption band. Each figure is inspected before it is saved (what matplotlib drew),
then written and read back as a PNG. Hand-built reports, except the compare CLI on a tiny model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.run.compare import markdown_table, recorded_fidelity
from edgekit.run.plot import assumption_band, latency_figure, write_plots
from edgekit.run.plot_ticks import stages_figure, tick_entry_figure
from edgekit.run.plot_variants import Variant, run_variants, variants_figure

pytest.importorskip("matplotlib")  # the plots extra

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N, WARMUP, EVERY = 200, 20, 8


def _stage(name: str, kind: str, mean: float) -> dict[str, Any]:
    return {"name": name, "kind": kind, "calls": 1, "p50_ms": mean, "mean_ms": mean, "share": 0}


def _report() -> dict[str, Any]:
    """A run report as the runner writes it: a measured cpu (action-chunk queue: every 8th tick
    plans), an estimated qcs6490, and distill, quantize and eval stages that timed their work."""
    rng = np.random.default_rng(0)
    samples = rng.lognormal(np.log(0.18), 0.05, N)
    samples[::EVERY] = 5.2  # the planning ticks: the unexplained p99 tail
    stats = {"p50": float(np.median(samples)), "p99": float(np.percentile(samples, 99))}
    cpu = {
        "budget_ms": 16.0, "gate": "p99", "evidence": "measured", "stats_ms": stats,
        "samples_ms": samples.tolist(), "estimated_ms": None,
        "report": {
            "warmup_samples_ms": np.linspace(3.0, 0.2, WARMUP).tolist(),
            "planning_ticks": list(range(0, N, EVERY)),
            "stages": [_stage("preprocess", "host", 0.02), _stage("encoder", "network", 0.3),
                       _stage("scheduler", "host", 0.05), _stage("other", "host", 0.01)],
        },
    }  # fmt: skip
    qcs = {
        "budget_ms": 16.0, "gate": "estimate", "evidence": "estimated", "stats_ms": None,
        "samples_ms": None, "estimated_ms": 0.9,
        "report": {"estimate": {"network_ms": 0.8, "host_ms": 0.1, "calls": [
            {"network": "encoder", "calls": 1, "ms_per_call": 0.3},
            {"network": "denoiser", "calls": 4, "ms_per_call": 0.125}]}},
    }  # fmt: skip
    stages = [
        {"index": 0, "stage": "distill", "report": {
            "fidelity": {"headline": {"metric": "action_range_mean_abs", "value": 0.031}},
            "latency": {"measured": True, "teacher_p50_ms": 62.0, "student_p50_ms": 19.8}}},
        {"index": 1, "stage": "quantize", "report": {
            "precision": "int8", "target": "cpu", "fidelity": {"worst_rel_l2": 0.018},
            "latency": {"measured": True, "fp32_p50_ms": 19.5, "quantized_p50_ms": 11.0}}},
        {"index": 2, "stage": "bench", "report": {}},
        {"index": 3, "stage": "eval", "report": {
            "teacher": {"tick_p50_ms": 60.0, "success_rate": 0.95, "success_ci95": [0.76, 0.99]},
            "candidate": {"tick_p50_ms": 10.5, "success_rate": 0.9,
                          "success_ci95": [0.70, 0.97]}}},
    ]  # fmt: skip
    return {"recipe": {"name": "dp"}, "stages": stages, "targets": {"cpu": cpu, "qcs6490": qcs}}


def _gid(fig, gid: str, ax: int = 0) -> list:
    a = fig.axes[ax]
    return [x for x in [*a.lines, *a.patches, *a.collections, *a.texts] if x.get_gid() == gid]


def _png(path: Path) -> tuple[int, ...]:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return tuple(image.shape)


def test_write_plots_writes_every_plot_as_png(tmp_path):
    written = write_plots(_report(), tmp_path / "run")
    assert written == {
        "cpu": "latency-cpu.png",
        "qcs6490": "latency-qcs6490.png",
        "cpu per tick": "ticks-cpu.png",
        "per-stage": "stages.png",
        "variants": "variants.png",
    }
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(written.values())
    for name in written.values():
        assert _png(tmp_path / "run" / name)[1] >= 500


def test_nothing_to_draw_writes_only_what_exists(tmp_path):
    report = _report()
    report["stages"] = []  # no variants
    del report["targets"]["cpu"]  # no timed ticks; the estimate still has its breakdown
    written = write_plots(report, tmp_path)
    assert set(written) == {"qcs6490", "per-stage"}


def test_tick_index_plot_marks_warmup_planning_drift_and_budget():
    entry = _report()["targets"]["cpu"]
    fig = tick_entry_figure("cpu", entry)
    (ticks,) = _gid(fig, "ticks")
    assert list(ticks.get_xdata()) == list(range(N)) and len(ticks.get_ydata()) == N
    (warm,) = _gid(fig, "warmup")
    assert list(warm.get_xdata()) == list(range(-WARMUP, 0))
    assert "not in the statistics" in warm.get_label()
    assert len(_gid(fig, "warmup-span")) == 1
    (plan,) = _gid(fig, "planning")
    assert len(plan.get_xdata()) == N // EVERY and set(plan.get_ydata()) == {5.2}
    (rolling,) = _gid(fig, "rolling-median")
    assert len(rolling.get_xdata()) == N - 10 + 1  # window: 5% of 200 ticks
    (budget,) = _gid(fig, "budget")
    assert set(budget.get_ydata()) == {16.0}
    (p99,) = _gid(fig, "p99")
    assert p99.get_ydata()[0] == pytest.approx(entry["stats_ms"]["p99"])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # 0.18 ms ticks under a 16 ms budget
    assert ax.get_ylim()[1] >= 16.0 and ax.get_xlim()[0] < -WARMUP + 1


def test_per_stage_bars_stack_measured_and_estimated_targets():
    targets = _report()["targets"]
    fig = stages_figure(targets)
    assert fig is not None
    ax = fig.axes[0]
    bars = [p for p in ax.patches if (p.get_gid() or "").startswith("stage:")]
    assert len(bars) == 4 + 3  # cpu: 4 stages; qcs6490: 2 networks + host steps
    cpu = [b for b in bars if b.get_y() < 0.5]
    assert sum(b.get_width() for b in cpu) == pytest.approx(0.38)
    assert [b.get_x() for b in cpu] == pytest.approx([0.0, 0.02, 0.32, 0.37])  # stacked
    hatched = [b for b in bars if b.get_hatch()]
    assert len(hatched) == 3  # the estimated bar
    assert sum(b.get_width() for b in hatched) == pytest.approx(0.3 + 4 * 0.125 + 0.1)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("cpu\n(0.38 ms mean)") and "estimated" in labels[1]
    assert "budget 16 ms" in labels[0]
    assert not _gid(fig, "budget")  # 16 ms is far off the 1 ms scale: written, not drawn
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "encoder (network x1)" in legend and "other (not in a stage)" in legend
    near = {t: {**e, "budget_ms": 1.0} for t, e in targets.items()}
    assert len(_gid(stages_figure(near), "budget")) == 2  # a dashed mark on each bar
    assert stages_figure({"x": {"report": {}}}) is None


def test_estimate_is_drawn_with_its_assumption_band():
    entry = _report()["targets"]["qcs6490"]
    assert assumption_band(entry) == pytest.approx((0.1 + 0.4, 0.1 + 1.6))
    fig = latency_figure("qcs6490", entry)
    (band,) = _gid(fig, "assumption-band")
    assert band.get_x() == pytest.approx(0.5)
    assert band.get_x() + band.get_width() == pytest.approx(1.7)
    assert "not a confidence interval" in band.get_label()
    assert len(_gid(fig, "estimate")) == 1 and len(_gid(fig, "budget")) == 1
    bare = {**entry, "report": {}}  # a report without the breakdown: the line alone
    assert not _gid(latency_figure("qcs6490", bare), "assumption-band")
    with pytest.raises(ValueError, match="no estimate breakdown"):
        assumption_band(bare)


def test_run_variants_and_their_figure():
    variants = run_variants(_report())
    names = [v.name for v in variants]
    assert names == ["distill (stage 1): teacher (input)", "distill (stage 1): student",
                     "quantize (stage 2): FP32 input", "quantize (stage 2): int8 for cpu",
                     "eval (stage 4): teacher", "eval (stage 4): candidate"]  # fmt: skip
    student, quant = variants[1], variants[3]
    assert (student.latency_ms, student.error, student.parent) == (19.8, 0.031, names[0])
    assert (quant.latency_ms, quant.error, quant.reference) == (11.0, 0.018, "FP32 input")
    assert variants[5].success_ci == (0.70, 0.97)
    fig = variants_figure(variants, "dp: variants")
    assert len(fig.axes) == 2  # fidelity and task success
    err, succ = fig.axes
    assert len(err.containers) == 4 and len(succ.containers) == 2
    arrows = [t for t in err.texts if t.get_gid() == "arrow"]
    assert len(arrows) == 2  # one per stage: input -> output
    legend = [t.get_text() for t in err.get_legend().get_texts()]
    assert legend[1] == "2. distill (stage 1): student: action-range-mean-abs 3.1% vs teacher"
    assert err.get_xscale() == "linear"  # 11 ms to 62 ms: under the 10x that turns log on
    (cand,) = [
        c for c in succ.containers if c.lines[0].get_gid() == "success:eval (stage 4): candidate"
    ]
    ((lo, hi),) = [seg[:, 1] for seg in cand.lines[2][0].get_segments()]
    assert (lo, hi) == pytest.approx((0.70, 0.97))  # the Wilson interval as the error bar


def test_variants_figure_without_anything_to_draw():
    with pytest.raises(ValueError, match="no variant"):
        variants_figure([Variant("a", 1.0)], "t")
    fig = variants_figure([Variant("a", 1.0, (0.9, 1.2), error=0.0)], "t", xlabel="x")
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "x"


def test_recorded_fidelity_from_manifest_checks():
    q = {"quantize": {"fidelity": {"worst_rel_l2": 0.044}}}
    assert recorded_fidelity(q, "quantize", "onnx") == {
        "stage": "quantize", "metric": "rel_l2", "value": 0.044,
        "reference": "the FP32 model it quantized"}  # fmt: skip
    d = {"distill": {"fidelity": {"headline": {"metric": "action_range_mean_abs", "value": 0.03}}}}
    assert recorded_fidelity(d, "distill", "onnx")["metric"] == "action_range_mean_abs"
    assert recorded_fidelity({"qnn": {"fidelity": {"worst_rel_l2": 0.02}}}, "export", "qnn")
    assert (
        recorded_fidelity({"tensorrt": {"fidelity": {"skipped": True}}}, "export", "tensorrt")
        is None
    )
    fp32 = recorded_fidelity({"parity": {}}, "export", "onnx")
    assert fp32 is not None and fp32["value"] == 0.0 and fp32["reference"] is None
    assert recorded_fidelity({}, "export", "onnx") is None


def test_compare_cli_benches_artifacts_and_writes_table_and_plot(cli, humanoid_artifact, tmp_path):
    out, js = tmp_path / "cmp", tmp_path / "cmp.json"
    r = cli("compare", humanoid_artifact, "zoo:humanoid:tiny", "--ticks", "20", "--warmup", "1",
            "--out", out, "--json", js)  # fmt: skip
    assert r.code == 0, r.err
    assert "reference (FP32)" in r.out and "not recorded" in r.out and "(max)" in r.out
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.md", "compare.png"]
    _png(out / "compare.png")
    report = json.loads(js.read_text())
    assert report["report"] == "edgekit.compare" and report["target"] == "cpu"
    rows = report["artifacts"]
    assert [row["stage"] for row in rows] == ["export", None]
    lat = rows[0]["latency"]
    assert lat["n"] == 20 and lat["p50_ci95"][0] <= lat["p50_ms"] <= lat["p50_ci95"][1]
    assert lat["p99_ci_reaches_max"] is True  # 20 ticks cannot bound a p99
    assert json.loads((out / "compare.json").read_text())["files"]["plot"] == "compare.png"
    from edgekit.run.compare import CompareResult, CompareRow

    table = markdown_table(CompareResult("cpu", [CompareRow(**row) for row in rows], None))  # type: ignore[arg-type]
    assert table.count("\n| `") == 2 and "| reference (FP32) |" in table


def test_new_plot_modules_do_not_load_matplotlib_on_import():
    mods = "edgekit.run.plot_ticks, edgekit.run.plot_variants, edgekit.run.compare"
    code = f"import sys, {mods}; print('matplotlib' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
