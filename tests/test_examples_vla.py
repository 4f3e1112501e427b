"""The token-decoding VLA example (examples/token_vla): an OpenVLA-style policy on a tiny
transformers Llama with an explicit KV cache, declared with the decode block."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
POLICY = f"{ROOT / 'examples' / 'token_vla' / 'policy.py'}:make_policy"


@pytest.fixture(scope="module")
def vla(tmp_path_factory):
    pytest.importorskip("transformers")
    from edgekit.export import export_onnx
    from edgekit.loader import load

    out = tmp_path_factory.mktemp("token_vla") / "fp32"
    res = export_onnx(load(POLICY), out, tick_checks=3)
    assert res.passed and res.written
    return out, res


def test_export_parity_per_network_and_over_whole_ticks(vla):
    _, res = vla
    rows = {(r.scope, r.name, r.output): r for r in res.parity}
    for net in ("prefill", "step"):  # logits, keys, values
        assert {o for s, n, o in rows if s == "network" and n == net} == {
            "output_0",
            "output_1",
            "output_2",
        }
    tokens = rows[("tick", "tick", "tokens")]
    assert tokens.max_abs == 0 and tokens.ok  # integer outputs must match exactly
    assert rows[("tick", "tick", "action")].ok
    manifest = json.loads((vla[0] / "edgekit.json").read_text())
    block = manifest["model"]["program"]["params"]["blocks"][0]
    assert block["block"] == "decode" and block["logits"] == "output_0"
    assert [c["input"] for c in block["cache"]] == ["past_keys", "past_values"]


def test_bench_counts_one_prefill_and_a_step_per_further_token(vla, cli, tmp_path):
    rep = tmp_path / "b.json"
    r = cli("bench", vla[0], "--ticks", "6", "--warmup", "1", "--budget-ms", "60000",
            "--json", rep)  # fmt: skip
    assert r.code == 0, r.err
    assert "prefill x1 + step x6" in r.out
    stages = {s["name"]: s for s in json.loads(rep.read_text())["stages"]}
    assert stages["prefill"]["calls"] == 1 and stages["step"]["calls"] == 6
    assert stages["decode"]["kind"] == "host" and stages["decode"]["calls"] == 8  # 7 + bins
    assert all(stages[s]["p50_ms"] > 0 for s in ("prefill", "step"))


def test_int8_reports_token_agreement_and_gates_on_it(vla, cli, tmp_path):
    q = tmp_path / "int8"
    r = cli("quantize", vla[0], "--calib", "synthetic", "--out", q, "--latency-ticks", "0",
            "--max-error", "token_agreement=0.5")  # fmt: skip
    assert r.code == 0, r.err
    assert "agreement" in r.out and "of tokens" in r.out
    rep = json.loads((q / "edgekit.json").read_text())["checks"]["quantize"]
    fid = rep["fidelity"]
    rows = {row["output"]: row for row in fid["rows"]}
    assert rows["tokens"]["metric"] == "token_agreement"
    agreement = fid["token_agreement"]
    assert agreement == rows["tokens"]["agreement"] and 0.5 <= agreement <= 1
    assert fid["max_error"] == "token_agreement=0.5" and fid["passed"]
    assert rows["action"]["agreement"] is None and fid["worst_rel_l2"] >= 0
    assert agreement < 1, "INT8 flips none of the tiny model's tokens: no bar can fail"
    out, js = tmp_path / "strict", tmp_path / "strict.json"
    r = cli("quantize", vla[0], "--calib", "synthetic", "--out", out, "--latency-ticks", "0",
            "--max-error", "token_agreement=1", "--json", js)  # fmt: skip
    assert r.code == 1, r.err
    assert "fidelity gate missed: token agreement" in r.err and "< --max-error" in r.err
    assert not out.exists()
    report = json.loads(js.read_text())
    assert report["fidelity"]["passed"] is False


def test_decoding_with_and_without_the_cache_gives_the_same_tokens(vla):
    from edgekit.loader import load
    from edgekit.loader.torch_files import load_factory
    from edgekit.loop.compare import run_ticks
    from edgekit.models import build_program
    from edgekit.runtimes import OrtRuntime, TorchRuntime

    nocache = load_factory(POLICY, kwargs={"cache": False})
    program = build_program(nocache.spec.program)
    assert program.calls_per_tick() == {"full": 7}
    ref = run_ticks(program, TorchRuntime(nocache.networks, nocache.spec, 1), 6)
    cached = load(str(vla[0]))
    files = dict(cached.files)  # type: ignore[union-attr]
    got = run_ticks(build_program(cached.spec.program), OrtRuntime(files, threads=1), 6)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
        np.testing.assert_array_equal(a["action"], b["action"])
    assert len({tuple(t["tokens"]) for t in ref}) > 1  # the tokens depend on the observation
