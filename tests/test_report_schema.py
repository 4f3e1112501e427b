"""One report family: every JSON report edgekit writes (bench, quantize, distill, eval, export,
run) has the same envelope and validates against its shipped JSON Schema; the verdicts say
"no gate set" when nothing was gated, and warn when a compressed variant is slower."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgekit.reports.envelope import ENVELOPE_KEYS, KINDS, schema_tag, speed_warnings
from edgekit.reports.schemas import schema_of, schema_path, shipped, stale, validate

ROOT = Path(__file__).resolve().parents[1]
CALIB = ROOT / "calib_data" / "humanoid-tiny.npz"
XSD = Path(__file__).parent / "data" / "junit-10.xsd"


def check(report: dict[str, Any], kind: str) -> dict[str, Any]:
    """The report is of ``kind``, starts with the envelope, and validates against its model
    and (where jsonschema is installed: the dev extra) against the shipped JSON Schema."""
    assert report["schema"] == schema_tag(kind) == f"edgekit.{kind}/1"
    assert list(report)[: len(ENVELOPE_KEYS)] == list(ENVELOPE_KEYS)
    assert validate(report) == kind
    assert report["created"].endswith("Z") and report["edgekit_version"]
    assert report["verdict"] == (
        "fail" if not report["passed"] else "pass" if report["gates"] else "ungated"
    )
    try:
        import jsonschema
    except ImportError:
        return report
    jsonschema.Draft202012Validator(shipped(kind)).validate(json.loads(json.dumps(report)))
    return report


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


# --- the shipped schemas -----------------------------------------------------------------------


def test_shipped_schemas_are_the_generated_ones():
    assert stale() == [], "run `make schemas`"
    for kind in KINDS:
        assert shipped(kind) == schema_of(kind)
        assert schema_path(kind).parent == ROOT / "edgekit" / "reports" / "schemas"


def test_shipped_schemas_are_json_schemas():
    jsonschema = pytest.importorskip("jsonschema")
    for kind in KINDS:
        jsonschema.Draft202012Validator.check_schema(shipped(kind))


def test_a_report_that_drifts_from_its_schema_is_refused():
    report = check(_bench_from_cli_like(), "bench")
    broken = {**report, "gates": [{**report["gates"][0], "surprise": 1}]}
    with pytest.raises(ValueError, match="surprise"):
        validate(broken)
    with pytest.raises(ValueError, match="not an edgekit report tag"):
        validate({**report, "schema": "edgekit.bench/0"})
    try:
        import jsonschema
    except ImportError:
        return
    assert not jsonschema.Draft202012Validator(shipped("bench")).is_valid(broken)


def _bench_from_cli_like() -> dict[str, Any]:
    from edgekit.bench import BenchConfig, bench

    return bench("zoo:humanoid:tiny", BenchConfig(ticks=3, warmup=0)).to_dict()


# --- every verb's report -----------------------------------------------------------------------


def test_bench_reports_validate_and_count_misses_against_the_budget(cli, tmp_path):
    path = tmp_path / "b.json"
    r = cli("bench", "zoo:humanoid:tiny", "--ticks", "5", "--warmup", "0", "--budget-ms", "30",
            "--json", path)  # fmt: skip
    assert r.code == 0, r.err
    rep = check(_json(path), "bench")
    assert rep["command"]["argv"][:3] == ["edgekit", "bench", "zoo:humanoid:tiny"]
    assert rep["measurement"]["kind"] == "measured" and rep["stats_ms"]["n"] == 5
    stats, budget = rep["stats_ms"], rep["budget"]["ms"]
    assert stats["deadline_ms"] == budget == 30.0 and rep["loop"]["period_ms"] == 20.0
    assert stats["deadline_misses"] == sum(x > budget for x in rep["samples_ms"])
    assert "ticks over budget" in r.out and "/5 > 30.00 ms" in r.out
    assert "loop period 20.00 ms at 50 Hz" in r.out
    # a budget longer than the loop period passes, and says what it means
    assert rep["verdict"] == "pass" and "longer than the loop period" in rep["warnings"][0]
    assert "warning: budget 30.00 ms is longer than the loop period" in r.out


def test_estimated_bench_report_validates(cli, tmp_path, humanoid_artifact):
    path = tmp_path / "e.json"
    r = cli("bench", humanoid_artifact, "--target", "qcs6490", "--json", path)
    assert r.code in (0, 1), r.err
    rep = check(_json(path), "bench")
    assert rep["measurement"]["kind"] == "estimated" and "stats_ms" not in rep
    assert rep["gates"][0]["evidence"] == "estimated"


def test_quantize_report_validates_and_says_no_gate_set(cli, tmp_path):
    path = tmp_path / "q.json"
    r = cli("quantize", "zoo:humanoid:tiny", "--out", tmp_path / "q", "--calib", CALIB,
            "--latency-ticks", "0", "--json", path)  # fmt: skip
    assert r.code == 0, r.err
    rep = check(_json(path), "quantize")
    assert rep["gates"] == [] and rep["verdict"] == "ungated" and rep["passed"] is True
    assert rep["fidelity"]["worst_rel_l2"] >= 0 and rep["latency"]["measured"] is False
    (last,) = [ln for ln in r.out.splitlines() if ln.startswith("verdict:")]
    assert last.startswith("verdict: no gate set  worst rel-L2 ")
    assert "PASS" not in last and "(no gate)" not in last
    # the artifact's own record is the body, without the envelope
    checks = _json(tmp_path / "q" / "edgekit.json")["checks"]["quantize"]
    assert "schema" not in checks and checks["fidelity"] == rep["fidelity"]


def test_a_slower_quantized_model_is_warned_about(tmp_path, capsys, monkeypatch):
    from edgekit.cli.render.quantize import print_quantize
    from edgekit.quantize import Int8Config, quantize

    monkeypatch.setenv("CI", "true")
    res = quantize("zoo:humanoid:tiny", tmp_path / "q", Int8Config(latency_ticks=0, max_error=0.5),
                   CALIB)  # fmt: skip
    assert res.warnings == []
    slow = {"measured": True, "where": "this host's CPU, onnxruntime", "fp32_p50_ms": 1.0,
            "quantized_p50_ms": 1.6, "speedup": 0.625, "threads": 1, "method": "p50"}  # fmt: skip
    res = dataclasses.replace(res, report={**res.report, "latency": slow})
    (warning,) = res.warnings
    assert "int8 model is SLOWER than the FP32 model" in warning and "(0.62x)" in warning
    rep = check(res.to_dict(), "quantize")
    assert rep["warnings"] == [warning] and rep["verdict"] == "pass"
    print_quantize(res)
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == f"warning: {warning}" and out[-1].startswith("verdict: PASS")


def test_distill_report_validates_and_a_slower_student_is_warned_about(cli, tmp_path):
    path = tmp_path / "d.json"
    r = cli("distill", "zoo:humanoid:tiny", "--out", tmp_path / "s", "--width", "0.5", "--data",
            "synthetic", "--steps", "3", "--latency-ticks", "0", "--json", path)  # fmt: skip
    assert r.code == 0, r.err
    rep = check(_json(path), "distill")
    assert rep["verdict"] == "ungated" and "verdict: no gate set" in r.out
    lat = {"measured": True, "where": "this host (cpu)", "teacher_p50_ms": 0.5,
           "student_p50_ms": 0.8, "speedup": 0.625}  # fmt: skip
    (warning,) = speed_warnings(lat, "student", "teacher")
    assert warning.startswith("the student is SLOWER than the teacher: tick p50 0.800 ms")
    assert speed_warnings({**lat, "student_p50_ms": 0.4}, "student", "teacher") == []
    assert speed_warnings({"measured": False}, "student", "teacher") == []


def test_eval_report_validates(cli, tmp_path):
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    path = tmp_path / "ev.json"
    r = cli("eval", "zoo:humanoid:reacher", "-n", "1", "--json", path)
    assert r.code == 0, r.err
    rep = check(_json(path), "eval")
    assert rep["verdict"] == "ungated" and "verdict: no gate set" in r.out


def test_export_report_validates(tmp_path):
    from edgekit.export import export_onnx
    from edgekit.loader import load

    res = export_onnx(load("zoo:humanoid:tiny"), tmp_path / "onnx", tick_checks=1)
    rep = check(res.to_dict(), "export")
    assert rep["format"] == "onnx" and rep["manifest"]["stage"] == "export"
    assert rep["verdict"] == "pass" and rep["gates"][0]["id"] == "fidelity.export"
    assert rep["command"]["argv"] is None  # a library call, not the CLI


def test_qnn_and_tensorrt_export_reports_validate(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime_qnn")
    from edgekit.cli.render.export import print_qnn
    from edgekit.export import QnnExport, TensorRTExport, export
    from edgekit.quantize import Int8Config, quantize

    monkeypatch.setenv("CI", "true")
    q = tmp_path / "q"
    quantize("zoo:humanoid:tiny", q, Int8Config(target="qcs6490", latency_ticks=0), CALIB)
    qnn = export(str(q), tmp_path / "ctx", QnnExport(target="qcs6490"))
    rep = check(qnn.to_dict(), "export")
    assert rep["format"] == "qnn" and rep["verdict"] == "ungated" and rep["htp_arch"] == 68
    print_qnn(qnn)
    assert capsys.readouterr().out.splitlines()[-1].startswith("verdict: no gate set  0 node(s)")
    trt = export("zoo:humanoid:tiny", tmp_path / "trt", TensorRTExport(target="jetson-orin-nx"))
    rep = check(trt.to_dict(), "export")
    assert rep["format"] == "tensorrt" and rep["verdict"] == "ungated"


# --- edgekit run: report.json, JUnit times, the Mermaid chart --------------------------------

RECIPE = {
    "schema_version": 1,
    "name": "schema",
    "model": "zoo:humanoid:tiny",
    "data": str(CALIB),
    "stages": [
        {"stage": "quantize", "precision": "int8", "target": "cpu", "max_error": 0.5,
         "latency_ticks": 0},
        {"stage": "bench", "ticks": 5, "warmup": 0},
    ],
    "targets": {"cpu": {"budget_ms": 16}, "qcs6490": {"budget_ms": 16}},
}  # fmt: skip


def _run(cli, tmp_path: Path, *overrides: str) -> tuple[int, Path]:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    sets = [a for o in overrides for a in ("--set", o)]
    res = cli("run", recipe, "--out", tmp_path / "run", *sets, "--json", tmp_path / "j.json")
    return res.code, tmp_path / "run"


def _junit(path: Path) -> ET.Element:
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    return ET.parse(path).getroot()


def test_run_report_junit_times_and_mermaid_chart(cli, tmp_path):
    code, out = _run(cli, tmp_path)
    assert code == 0
    rep = check(_json(out / "report.json"), "run")
    assert _json(tmp_path / "j.json")["gates"] == rep["gates"]
    assert rep["edgekit"] == rep["edgekit_version"] and rep["verdict"] == "pass"
    assert rep["targets"]["cpu"]["report"]["schema"] == "edgekit.bench/1"
    seconds = {g["id"]: g["seconds"] for g in rep["gates"]}
    assert set(seconds) == {"fidelity.quantize", "latency.cpu", "latency.qcs6490"}
    assert all(s > 0 for s in seconds.values())

    root = _junit(out / "junit.xml")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("timestamp") == rep["created"].removesuffix("Z")
    times = {c.get("name"): float(c.get("time") or 0) for c in root.iter("testcase")}
    assert len(times) == 3 and all(t > 0 for t in times.values())
    assert sum(times.values()) <= float(suite.get("time") or 0) + 0.01

    md = (out / "summary.md").read_text()
    block = md.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0] == "xychart-beta"
    assert block[2].strip() == 'x-axis ["cpu", "qcs6490 (est.)"]'
    assert [ln.split()[0] for ln in block[4:]] == ["bar", "bar", "line"]
    assert block[-1].strip() == "line [16, 16]"
    assert "| ticks over budget |" in md and "[latency-cpu.png](latency-cpu.png)" in md


def test_run_with_a_failed_gate_reports_skips_with_their_reason(cli, tmp_path):
    code, out = _run(cli, tmp_path, "stages[0].max_error=1e-9")
    assert code == 1
    rep = check(_json(out / "report.json"), "run")
    status = {g["id"]: (g["status"], g["seconds"]) for g in rep["gates"]}
    assert status["latency.cpu"] == ("skipped", None) and status["fidelity.quantize"][1] > 0
    root = _junit(out / "junit.xml")
    for case in root.iter("testcase"):
        skipped = case.find("skipped")
        text = case.findtext("system-out") or ""
        assert "None" not in text
        if skipped is not None:
            assert skipped.get("message", "").startswith("not run: the quantize stage failed")
            assert text.startswith("gate: latency.") and "skipped: not run: " in text
            assert case.get("time") == "0.000"
        else:
            assert float(case.get("time") or 0) > 0
    md = (out / "summary.md").read_text()
    assert "```mermaid" not in md  # no target has a figure: no chart


def test_run_report_validates_with_its_warnings(tmp_path):
    """The warnings of a stage's record reach the run report, prefixed with the stage."""
    from edgekit.run import run

    recipe = tmp_path / "r.yaml"
    doc = {**RECIPE, "targets": {"cpu": {"budget_ms": 40}}}
    recipe.write_text(yaml.safe_dump(doc, sort_keys=False))
    rep = check(run(recipe, tmp_path / "run", reports=False).report, "run")
    assert rep["warnings"] == [
        "bench: cpu: budget 40.00 ms is longer than the loop period 20.00 ms at 50 Hz: a tick "
        "within budget still overruns the loop"
    ]
