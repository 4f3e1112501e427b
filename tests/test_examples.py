"""The shipped examples of users' own policies, built on the real libraries (diffusers...)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNET1D = f"{ROOT / 'examples' / 'diffusion_unet1d' / 'policy.py'}:make_policy"


@pytest.fixture(scope="module")
def unet1d(tmp_path_factory):
    pytest.importorskip("diffusers")
    from edgekit.export import export_onnx
    from edgekit.loader import load

    out = tmp_path_factory.mktemp("unet1d") / "fp32"
    res = export_onnx(load(UNET1D), out, tick_checks=1)
    assert res.passed and res.written
    return out


def test_diffusers_unet1d_policy_benches_its_real_16_step_tick(unet1d, cli, tmp_path):
    rep = tmp_path / "b.json"
    r = cli("bench", unet1d, "--ticks", "16", "--warmup", "0", "--json", rep)
    assert r.code == 0, r.err
    report = json.loads(rep.read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["unet"]["calls"] == 16 and stages["scheduler"]["kind"] == "host"
    assert any("networks ran on 2 of 16 ticks" in n for n in report["notes"]), report["notes"]
    # the budget is the planning tick's problem: p99 is a planning tick, p50 a queued one
    assert report["stats_ms"]["p99"] > 10 * report["stats_ms"]["p50"]
    r = cli("bench", unet1d, "--ticks", "8", "--warmup", "0", "--json", rep,
            "--loop", "num_inference_steps=4")  # fmt: skip
    assert r.code == 0, r.err
    assert {s["name"]: s for s in json.loads(rep.read_text())["stages"]}["unet"]["calls"] == 4


def test_diffusers_unet1d_policy_quantizes_with_whole_tick_fidelity(unet1d, cli, tmp_path):
    q = tmp_path / "int8"
    r = cli("quantize", unet1d, "--calib", "synthetic", "--out", q, "--latency-ticks", "9")
    assert r.code == 0, r.err
    rep = json.loads((q / "edgekit.json").read_text())["checks"]["quantize"]
    assert rep["fidelity"]["rows"] and rep["fidelity"]["worst_rel_l2"] > 0
    assert rep["latency"]["measured"] and "ticks that run the networks" in rep["latency"]["method"]
    assert rep["latency"]["fp32_p50_ms"] > 0.5  # a planning tick, not a queued one


def test_the_examples_recipe_checks(cli):
    r = cli("recipe", "check", ROOT / "examples" / "diffusion_unet1d" / "recipe.yaml")
    assert r.code == 0, r.err
    assert "distill -> quantize -> bench" in r.out
