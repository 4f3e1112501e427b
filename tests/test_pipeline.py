"""Every zoo kind at its tiny preset through load -> export -> parity -> bench, via the CLI."""

from __future__ import annotations

import json

import pytest

from edgekit.zoo import ZOO

TINY = [(kind, p) for kind in ZOO.names() for p in ZOO.get(kind).presets if p.startswith("tiny")]


@pytest.mark.parametrize(("kind", "preset"), TINY, ids=[f"{k}:{p}" for k, p in TINY])
def test_export_parity_bench(cli, tmp_path, kind, preset):
    ref = f"zoo:{kind}:{preset}"
    out = tmp_path / "art"
    r = cli("export", ref, "--out", out)
    assert r.code == 0, r.err
    manifest = json.loads((out / "edgekit.json").read_text())
    spec = manifest["model"]
    assert manifest["stage"] == "export" and manifest["format"] == "onnx"
    assert manifest["source"]["ref"] == ref and len(manifest["source"]["sha256"]) == 64
    assert set(manifest["versions"]) >= {"edgekit", "torch", "onnx", "onnxruntime"}
    # one ONNX file per network, each listed with its io spec
    names = [n["name"] for n in spec["networks"]]
    assert sorted(manifest["files"]) == sorted(names)
    for n in names:
        assert (out / manifest["files"][n]["file"]).is_file()
    # parity ran on every network output and on the whole tick, and passed
    parity = manifest["checks"]["parity"]
    assert parity["passed"] is True
    checked = {(row["scope"], row["name"], row["output"]) for row in parity["rows"]}
    for n in spec["networks"]:
        for o in n["outputs"]:
            assert ("network", n["name"], o["name"]) in checked
    assert any(row["scope"] == "tick" for row in parity["rows"])

    report_path = tmp_path / "bench.json"
    r = cli(
        "bench", out, "--ticks", "3", "--warmup", "1", "--budget-ms", "60000", "--json", report_path
    )
    assert r.code == 0, r.err
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "pass"
    assert report["measurement"]["kind"] == "measured"
    assert report["stats_ms"]["n"] == 3
    assert report["runtime"]["intra_op_threads"] >= 1
    assert report["runtime"]["allow_spinning"] is False
    calls = report["model"]["calls_per_tick"]
    stages = {s["name"]: s for s in report["stages"]}
    for net, k in calls.items():
        assert stages[net]["kind"] == "network" and stages[net]["calls"] == k
    assert report["budget"] == {"ms": 60000.0, "gate": "p99", "source": "--budget-ms"}
