"""Agreement metrics of decisions (decoded tokens, a reranker's choice) and the one budget
syntax that gates on them: ``--max-error 0.05`` / ``--max-error token_agreement=0.95``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.gates import ErrorBudget
from edgekit.loop.fidelity import compare_runs, metric_value
from edgekit.quantize import quantize_config

FIX = Path(__file__).parent / "fixtures" / "decoding.py"


def test_agreement_of_tokens_and_of_choices():
    ref = [{"tokens": np.array([1, 2, 3, 4]), "choice": np.array(0), "x": np.ones(2)}] * 2
    got = [
        {"tokens": np.array([1, 2, 3, 9]), "choice": np.array(0), "x": np.ones(2)},
        {"tokens": np.array([1, 2, 3, 4]), "choice": np.array(1), "x": np.ones(2) * 1.1},
    ]
    rows = {r.output: r for r in compare_runs("tick", "p", ref, got)}
    assert rows["tokens"].metric == "token_agreement" and rows["tokens"].agreement == 7 / 8
    assert rows["choice"].metric == "choice_agreement" and rows["choice"].agreement == 0.5
    assert rows["x"].agreement is None
    all_rows = list(rows.values())
    assert metric_value(all_rows, "token_agreement") == 7 / 8
    assert metric_value(all_rows, None) == pytest.approx(rows["x"].rel_l2)
    assert metric_value(all_rows[2:], "choice_agreement") is None


def test_one_budget_syntax_upper_for_errors_lower_for_agreements():
    assert quantize_config(max_error=0.05).max_error == ErrorBudget(0.05)
    b = quantize_config(max_error="token_agreement=0.95").max_error
    assert b == ErrorBudget(0.95, "token_agreement") and b.minimum
    assert str(b) == "token_agreement=0.95"
    assert b.met(0.96) and not b.met(0.9) and not b.met(None)
    assert quantize_config(max_error=0.05).to_dict()["max_error"] == 0.05  # reads as it did
    assert quantize_config(max_error="choice_agreement=0.9").to_dict()["max_error"] == (
        "choice_agreement=0.9"
    )
    gate = b.gate("quantize", 0.9, "held-out ticks")
    assert not gate.passed and gate.metric == "token_agreement"
    assert "0.9 < --max-error token_agreement=0.95" in gate.message
    assert ErrorBudget(0.1).gate("quantize", 0.05, "m").passed


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("token_agreement=1.5", "--max-error 'token_agreement=1.5': must be <= 1"),
        ("token_agreement=0", "must be > 0"),
        ("accuracy=0.9", "unknown metric 'accuracy'"),
        ("token_agreement=high", "not a number"),
    ],
)
def test_bad_budgets_are_one_line_exit_2(cli, tmp_path, value, needle):
    r = cli("quantize", "zoo:humanoid:tiny", "--calib", "synthetic", "--out", tmp_path / "q",
            "--max-error", value)  # fmt: skip
    assert r.code == 2 and needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (tmp_path / "q").exists()


def test_quantized_reranker_reports_choice_agreement(cli, tmp_path):
    pytest.importorskip("torch")
    q, js = tmp_path / "q", tmp_path / "q.json"
    budget = ("--max-error", "choice_agreement=0.5")
    r = cli("quantize", f"{FIX}:reranker", "--calib", "synthetic", "--out", q,
            "--latency-ticks", "0", *budget, "--json", js)  # fmt: skip
    assert r.code == 0, r.err
    fid = json.loads(js.read_text())["fidelity"]
    rows = {row["output"]: row for row in fid["rows"]}
    assert rows["choice"]["metric"] == "choice_agreement"
    assert fid["choice_agreement"] == rows["choice"]["agreement"] >= 0.5
    assert "token_agreement" not in fid
    # a budget on a metric the tick does not have fails (exit 1), and says why
    r = cli("quantize", f"{FIX}:reranker", "--calib", "synthetic", "--out", tmp_path / "t",
            "--latency-ticks", "0", "--max-error", "token_agreement=0.5")  # fmt: skip
    assert r.code == 1 and "no token_agreement output" in r.err, r.err
    assert not (tmp_path / "t").exists()


def test_distilled_decoder_reports_and_gates_token_agreement(cli, tmp_path):
    pytest.importorskip("torch")
    out, js = tmp_path / "s", tmp_path / "s.json"
    r = cli("distill", f"{FIX}:decoder", "--width", "0.5", "--data", "synthetic", "--steps", "3",
            "--latency-ticks", "0", "--out", out, "--max-error", "token_agreement=0.99",
            "--json", js)  # fmt: skip
    assert r.code == 1, r.err
    assert "student token_agreement" in r.err and "is under --max-error" in r.err
    assert "of tokens" in r.out and not out.exists()
    rep = json.loads(js.read_text())
    fid = rep["fidelity"]
    tokens = next(row for row in fid["rows"] if row["output"] == "tokens")
    assert fid["metrics"]["token_agreement"] == tokens["agreement"] < 0.99
    assert rep["gate"] == {"max_error": "token_agreement=0.99", "metric": "token_agreement",
                           "passed": False}  # fmt: skip
