"""Report writers of ``edgekit run``: JUnit XML, Markdown summary and latency plots.

Every test works on a hand-built report dict, so no recipe or model is run.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.run.plot import latency_figure, write_latency_plots
from edgekit.run.reports import junit_xml, markdown_summary, write_junit, write_markdown

XSD = Path(__file__).parent / "data" / "junit-10.xsd"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _gate(gid: str, kind: str, name: str, stage: str, target: str | None, **kw: Any) -> dict:
    gate = {"id": gid, "kind": kind, "name": name, "stage": stage, "target": target}
    gate.update({"status": "passed", "evidence": "measured", "message": "", "unit": "ms"})
    gate.update(kw)
    return gate


def _report(variant: str = "pass") -> dict[str, Any]:
    """A run report as the runner writes it; ``variant`` is pass, fail or skip."""
    samples = np.random.default_rng(0).lognormal(np.log(0.4), 0.1, 200)
    stats = {k: float(np.percentile(samples, q)) for k, q in (("p50", 50), ("p90", 90))}
    stats |= {"p99": float(np.percentile(samples, 99)), "max": float(samples.max())}
    stats |= {"mean": float(samples.mean()), "std": float(samples.std()), "n": 200}
    gates = [
        _gate("fidelity.quantize", "fidelity", "quantize: whole-tick rel-L2 <= 5%", "quantize",
              None, metric="rel_l2", value=0.018, limit=0.05, unit="ratio",
              method="onnxruntime vs FP32 on 12 held-out ticks"),
        _gate("latency.cpu", "latency", "cpu: p99 tick <= 16 ms", "bench", "cpu", metric="p99",
              value=stats["p99"], limit=16.0, method="whole tick timed on this host, 200 ticks"),
        _gate("latency.qcs6490", "latency", "qcs6490: tick <= 16 ms (estimated)", "bench",
              "qcs6490", metric="estimate", value=0.9, limit=16.0, evidence="estimated",
              method="roofline over the exported graphs"),
    ]  # fmt: skip
    targets: dict[str, Any] = {
        "cpu": {"budget_ms": 16.0, "gate": "p99", "evidence": "measured", "artifact": "out/q",
                "stats_ms": stats, "samples_ms": samples.tolist(), "deadline_misses": 0,
                "estimated_ms": None, "report": {}},
        "qcs6490": {"budget_ms": 16.0, "gate": "estimate", "evidence": "estimated",
                    "artifact": "out/q", "stats_ms": None, "samples_ms": None,
                    "deadline_misses": None, "estimated_ms": 0.9, "report": {}},
    }  # fmt: skip
    report = {
        "schema": "edgekit.run/1",
        "recipe": {"name": "humanoid-qcs6490", "path": "recipes/humanoid.yaml",
                   "sha256": "ab" * 32, "schema_version": 1},
        "model": "zoo:humanoid:tiny", "out": "out/humanoid", "passed": True, "exit_code": 0,
        "seconds": 12.3, "edgekit": "0.4.0",
        "environment": {"host": "ci-1", "cpu": "AMD EPYC", "usable_cpus": 2, "versions": {}},
        "stages": [
            {"index": 0, "stage": "quantize", "status": "ran", "artifact": "out/q",
             "seconds": 4.2, "settings_hash": "ab12", "summary": "int8 for qcs6490 (A8W8)",
             "report": {}},
            {"index": 1, "stage": "bench", "status": "cached", "artifact": None,
             "seconds": 0.1, "settings_hash": "cd34", "summary": "2 targets", "report": {}},
        ],
        "gates": gates, "targets": targets,
    }  # fmt: skip
    if variant == "fail":
        report.update(passed=False, exit_code=1)
        gates[1].update(status="failed", value=21.3, message="p99 21.3 ms > 16 ms")
    elif variant == "skip":
        gates.append(
            _gate("latency.jetson-orin-nx", "latency", "jetson-orin-nx: p99 tick <= 16 ms",
                  "bench", "jetson-orin-nx", metric="p99", value=None, limit=16.0,
                  status="skipped", method="", message="not run: the quantize stage failed")
        )  # fmt: skip
        targets["jetson-orin-nx"] = {"budget_ms": 16.0, "gate": "p99", "evidence": "measured",
                                     "artifact": None, "stats_ms": None, "samples_ms": None,
                                     "deadline_misses": None, "estimated_ms": None,
                                     "report": {}}  # fmt: skip
    return report


@pytest.fixture(scope="module")
def schema():
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(XSD))


def _case(root: ET.Element, gid_name: str) -> ET.Element:
    (case,) = [c for c in root.iter("testcase") if c.get("name") == gid_name]
    return case


@pytest.mark.parametrize(
    ("variant", "failures", "skipped"), [("pass", 0, 0), ("fail", 1, 0), ("skip", 0, 1)]
)
def test_junit_validates_and_counts(schema, variant, failures, skipped):
    report = _report(variant)
    text = junit_xml(report)
    schema.validate(text)  # raises with the offending element if invalid

    root = ET.fromstring(text)
    n = len(report["gates"])
    assert root.tag == "testsuites" and root.get("name") == "edgekit"
    assert (root.get("tests"), root.get("failures")) == (str(n), str(failures))
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "edgekit.humanoid-qcs6490"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        str(n), str(failures), str(skipped)
    )  # fmt: skip
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g["name"] for g in report["gates"]]
    assert {c.get("classname") for c in cases} <= {
        "edgekit.humanoid-qcs6490.latency", "edgekit.humanoid-qcs6490.fidelity"
    }  # fmt: skip
    assert len(root.findall(".//failure")) == failures
    assert len(root.findall(".//skipped")) == skipped


def test_junit_failure_skip_details_and_properties():
    root = ET.fromstring(junit_xml(_report("fail")))
    failure = _case(root, "cpu: p99 tick <= 16 ms").find("failure")
    assert failure is not None
    assert failure.get("type") == "GateFailed" and failure.get("message") == "p99 21.3 ms > 16 ms"
    assert "value: 21.3 ms" in failure.text and "limit: 16 ms" in failure.text
    assert "evidence: measured" in failure.text and "200 ticks" in failure.text

    estimated = _case(root, "qcs6490: tick <= 16 ms (estimated)")
    assert estimated.find("failure") is None
    out = estimated.findtext("system-out")
    assert "ESTIMATED" in out and "evidence: estimated" in out and "roofline" in out

    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["recipe.path"] == "recipes/humanoid.yaml" and props["recipe.sha256"] == "ab" * 32
    assert props["model"] == "zoo:humanoid:tiny" and props["edgekit"] == "0.4.0"

    skip_root = ET.fromstring(junit_xml(_report("skip")))
    skip = _case(skip_root, "jetson-orin-nx: p99 tick <= 16 ms").find("skipped")
    assert skip is not None and skip.get("message") == "not run: the quantize stage failed"


def test_junit_escapes_markup_and_control_characters(schema):
    report = _report("fail")
    report["gates"][1]["name"] = 'cpu <p99> & "tail"'
    report["gates"][1]["message"] = "\x1b[31mp99 > budget\x1b[0m \x00<&>"
    text = junit_xml(report)
    schema.validate(text)
    failure = _case(ET.fromstring(text), 'cpu <p99> & "tail"').find("failure")
    assert failure is not None and failure.get("message") == "p99 > budget <&>"


def test_schema_rejects_invalid_junit(schema):
    # Guards the guard: a copy of the XSD that accepted anything would make the tests above moot.
    assert not schema.is_valid('<testsuites><testsuite name="x" tests="1"/></testsuites>')
    assert not schema.is_valid('<testsuites skipped="1"/>')


def test_markdown_failed_run():
    md = markdown_summary(_report("fail"))
    assert md.splitlines()[0] == "### ❌ edgekit run humanoid-qcs6490: 1 of 3 gates failed"
    header = "| target | budget | statistic | value | ticks over budget | evidence | verdict |"
    assert header in md
    assert "| stage | metric | value | limit | verdict |" in md
    assert "| stage | status | seconds | summary | artifact |" in md
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "| measured |" in rows["cpu"] and "21.3 ms" in rows["cpu"] and "| 0/200 |" in rows["cpu"]
    assert "❌ failed: p99 21.3 ms > 16 ms" in rows["cpu"]
    assert "| estimated |" in rows["qcs6490"] and "~0.9 ms" in rows["qcs6490"]
    assert "✅ passed" in rows["qcs6490"]
    assert "| quantize | rel_l2 | 1.8% | 5% | ✅ passed |" in md
    assert "| quantize | ran | 4.2 s | int8 for qcs6490 (A8W8) | `out/q` |" in md
    assert "![" not in md


def test_markdown_passed_skipped_and_plot_links():
    md = markdown_summary(_report("pass"), plots={"cpu": "latency-cpu.png"})
    assert md.startswith("### ✅ edgekit run humanoid-qcs6490: all 3 gates passed")
    # linked by name (an uploaded artifact), not embedded: a step summary cannot show it
    assert "- cpu: [latency-cpu.png](latency-cpu.png)" in md and "![" not in md

    skipped = _report("skip")
    skipped.update(passed=False, exit_code=1)
    md = markdown_summary(skipped)
    assert md.startswith("### ❌ edgekit run humanoid-qcs6490:") and "1 of 4 skipped" in md
    assert "⏭️ skipped: not run: the quantize stage failed" in md


def test_writers_write_files(tmp_path):
    report = _report("fail")
    junit = write_junit(report, tmp_path / "sub" / "junit.xml")
    md = write_markdown(report, tmp_path / "summary.md", plots={"cpu": "latency-cpu.png"})
    assert junit.read_text(encoding="utf-8") == junit_xml(report)
    assert md.read_text(encoding="utf-8").startswith("### ❌")


def test_latency_plots_are_pngs_and_skip_targets_without_data(tmp_path):
    import matplotlib.image

    plots = write_latency_plots(_report("skip"), tmp_path / "plots")
    assert plots == {"cpu": "latency-cpu.png", "qcs6490": "latency-qcs6490.png"}
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(plots.values())
    for name in plots.values():
        path = tmp_path / "plots" / name
        assert path.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[1] >= 500


def _line(fig, gid: str):
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == gid]
    return line


def test_measured_figure_has_budget_cdf_and_percentiles():
    report = _report()
    entry = report["targets"]["cpu"]
    fig = latency_figure("cpu", entry)
    ax = fig.axes[0]
    budget = _line(fig, "budget")
    assert all(x == 16.0 for x in budget.get_xdata())
    assert budget.get_label().startswith("budget") and budget.get_linestyle() == "--"
    assert ax.get_title() == "cpu: whole-tick latency (measured, 200 ticks)"
    assert ax.get_xlabel() == "tick latency (ms)"
    low, high = ax.get_xlim()
    assert low <= min(entry["samples_ms"]) and high >= 16.0
    assert _line(fig, "p99").get_xdata()[0] == pytest.approx(entry["stats_ms"]["p99"])
    # The CDF reaches 1 at the slowest tick.
    cdf = max(ax.get_lines(), key=lambda ln: len(ln.get_xdata()))
    assert len(cdf.get_xdata()) == 200 and cdf.get_ydata()[-1] == pytest.approx(1.0)


def test_estimated_and_skipped_figures():
    report = _report("skip")
    fig = latency_figure("qcs6490", report["targets"]["qcs6490"])
    ax = fig.axes[0]
    assert "(estimated)" in ax.get_title()
    assert _line(fig, "estimate").get_label() == "estimated 0.9 ms (roofline, no distribution)"
    assert all(x == 16.0 for x in _line(fig, "budget").get_xdata())
    assert ax.get_xlim()[1] >= 16.0 and ax.get_xlim()[0] <= 0.9

    tight = copy.deepcopy(report["targets"]["qcs6490"])
    tight["estimated_ms"] = 20.0  # over budget: the axis must still hold both lines
    assert latency_figure("qcs6490", tight).axes[0].get_xlim()[1] >= 20.0

    with pytest.raises(ValueError, match="no latency samples"):
        latency_figure("jetson-orin-nx", report["targets"]["jetson-orin-nx"])


def test_import_does_not_load_matplotlib():
    code = "import sys, edgekit.run.plot, edgekit.run.reports; print('matplotlib' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_junit_times_are_the_gates_seconds_and_a_skip_says_why(schema):
    report = _report("skip")
    report["gates"][0]["seconds"] = 4.2  # the quantize stage's time
    report["gates"][1]["seconds"] = 0.35  # the cpu target's bench
    report["gates"][-1].update(metric=None, limit=None)  # a skipped gate as the runner writes it
    text = junit_xml(report)
    schema.validate(text)
    root = ET.fromstring(text)
    times = {c.get("name"): c.get("time") for c in root.iter("testcase")}
    assert times["quantize: whole-tick rel-L2 <= 5%"] == "4.200"
    assert times["cpu: p99 tick <= 16 ms"] == "0.350"
    assert times["qcs6490: tick <= 16 ms (estimated)"] == "0.000"  # not timed
    out = _case(root, "jetson-orin-nx: p99 tick <= 16 ms").findtext("system-out")
    assert "skipped: not run: the quantize stage failed" in out and "None" not in out
    assert "metric:" not in out


def test_markdown_mermaid_chart_of_every_target_with_a_figure():
    report = _report("skip")
    md = markdown_summary(report)
    block = md.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    stats = report["targets"]["cpu"]["stats_ms"]
    assert block[0] == "xychart-beta"
    assert block[2].strip() == 'x-axis ["cpu", "qcs6490 (est.)"]'  # jetson: skipped, no figure
    assert block[4].strip() == f"bar [{round(stats['p99'], 4):g}, 0.9]"
    assert block[5].strip() == f"bar [{round(stats['p50'], 4):g}, 0.9]"
    assert block[6].strip() == "line [16, 16]"
    assert "line: the budget" in md and "| ticks over budget |" in md


def test_markdown_says_no_gate_set_and_lists_warnings():
    report = _report("pass")
    report.update(gates=[], targets={}, warnings=["quantize: the int8 model is SLOWER ..."])
    md = markdown_summary(report)
    assert md.startswith("### ✅ edgekit run humanoid-qcs6490: no gate set")
    assert "- ⚠️ quantize: the int8 model is SLOWER ..." in md and "```mermaid" not in md
