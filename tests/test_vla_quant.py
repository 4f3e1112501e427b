"""Quantization policy for VLAs: whole networks kept in float (``--keep-float``), the mixed
search's network-level candidate, and the choices each report lists (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from edgekit.errors import BadInputError
from edgekit.quantize import Int4Config, Int8Config, MixedConfig, quantize
from edgekit.run.recipe_file import RecipeError, parse_recipe

CALIB = Path(__file__).resolve().parents[1] / "calib_data" / "vla-flow-tiny.npz"
MODEL = "zoo:vla-flow:tiny"
QDQ = {"QuantizeLinear", "DequantizeLinear", "MatMulNBits"}


def q(cli, tmp_path, *args, out="q"):
    return cli(
        "quantize", MODEL, "--calib", CALIB, "--out", tmp_path / out, "--latency-ticks", "0", *args
    )


def qdq_nodes(path: Path) -> int:
    return sum(n.op_type in QDQ for n in onnx.load(str(path)).graph.node)


def test_keep_float_expert_then_mixed_lands_on_it(cli, tmp_path):
    r = q(cli, tmp_path, "--keep-float", "expert", "--json", tmp_path / "kf.json", out="kf")
    assert r.code == 0, r.err
    out = tmp_path / "kf"
    assert qdq_nodes(out / "expert.onnx") == 0  # every expert node float (time embedding too)
    assert qdq_nodes(out / "prefix.onnx") > 0  # the backbone is INT8
    rep = json.loads((tmp_path / "kf.json").read_text())
    assert rep["kept_float"] == ["expert"]
    assert rep["extra"]["quantized_nodes"]["expert"] == 0
    assert rep["extra"]["quantized_nodes"]["prefix"] > 0
    (chosen,) = rep["extra"]["choices"]  # the fidelity of the choice made, per network too
    assert chosen["choice"] == "INT8 prefix, float expert" and chosen["kept_float"] == ["expert"]
    assert chosen["worst_rel_l2"] == rep["fidelity"]["worst_rel_l2"]
    assert chosen["network_rel_l2"]["prefix"] > 0 and chosen["network_rel_l2"]["expert"] < 1e-4
    assert 0 < chosen["float_weights"] < 0.5
    assert "chosen: INT8 prefix, float expert (--keep-float)" in r.out

    # mixed, to a budget all-INT8 misses and the float expert meets: the network candidate
    # is tried right after all-INT8 and is the one written, with the choices in the report
    budget = chosen["worst_rel_l2"] * 1.25
    r = q(
        cli,
        tmp_path,
        "--precision",
        "mixed",
        "--max-error",
        f"{budget:.6g}",
        "--json",
        tmp_path / "mx.json",
        out="mx",
    )
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "mx.json").read_text())
    choices = rep["extra"]["choices"]
    assert choices[0]["choice"] == "all INT8" and choices[0]["kept_float"] == []
    if choices[0]["met"]:
        pytest.skip("all INT8 already meets the budget on this host")
    assert set(choices[0]["network_rel_l2"]) == {"prefix", "expert"}
    net = choices[1]
    assert net["kept_float"] == ["expert"] and net["met"] is True and len(choices) == 2
    assert rep["kept_float"] == ["expert"] and rep["extra"]["search"]["sensitivity"] == []
    assert "expert (called 10x per tick) kept whole in float" in rep["extra"]["chosen"]["why"]
    assert qdq_nodes(tmp_path / "mx" / "expert.onnx") == 0
    assert "choices tried" in r.out and "all INT8" in r.out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--keep-float", "backbone"],
            "--keep-float 'backbone': the model has no such network (its networks: prefix, expert)",
        ),
        (["--keep-float", "prefix", "--keep-float", "expert"], "nothing left to quantize"),
        (
            ["--precision", "int4", "--keep-float", "expert"],
            "--keep-float does not apply to --precision int4",
        ),
        (["--keep-float", "expert", "--target", "qcs6490"], "not supported for the Hexagon"),
    ],
)
def test_keep_float_refused(cli, tmp_path, args, needle):
    r = q(cli, tmp_path, *args)
    assert r.code == 2, r.err
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (tmp_path / "q").exists()


def test_recipe_quantize_stage_takes_keep_float(tmp_path):
    doc = {
        "schema_version": 1,
        "name": "vla-flow",
        "model": MODEL,
        "data": str(CALIB),
        "stages": [{"stage": "quantize", "keep_float": ["expert"]}],
    }
    stage = parse_recipe(doc).stages[0]
    assert isinstance(stage, Int8Config) and stage.keep_float == ["expert"]
    mixed = {"stage": "quantize", "precision": "mixed", "max_error": 0.02, "keep_float": ["x"]}
    stage = parse_recipe({**doc, "stages": [mixed]}).stages[0]
    assert isinstance(stage, MixedConfig) and stage.keep_float == ["x"]
    with pytest.raises(RecipeError, match="keep_float"):
        parse_recipe({**doc, "stages": [{"stage": "quantize", "keep_float": "expert"}]})
    with pytest.raises(RecipeError, match="keep_float"):
        parse_recipe(
            {
                **doc,
                "stages": [{"stage": "quantize", "precision": "int4", "keep_float": ["expert"]}],
            }
        )
    assert not Int4Config.model_fields.get("keep_float")
    # the names are checked against the model when the stage runs, before any work
    bad = Int8Config(keep_float=["x"], latency_ticks=0)
    with pytest.raises(BadInputError, match="its networks: prefix, expert"):
        quantize(MODEL, tmp_path / "r", bad, str(CALIB))
    assert not (tmp_path / "r").exists()
