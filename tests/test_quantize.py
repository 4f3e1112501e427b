"""edgekit quantize: INT8 on every zoo kind, target schemes, INT4, mixed precision, gates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgekit.isa import host_isa
from edgekit.reports.envelope import ENVELOPE_KEYS
from edgekit.targets import get_target
from edgekit.zoo import ZOO

CALIB = Path(__file__).resolve().parents[1] / "calib_data"
KINDS = ZOO.names()
FAST = ["--latency-ticks", "3"]


def q(cli, tmp_path, ref, *args, out="q"):
    kind = ref.split(":")[1]
    return cli(
        "quantize",
        ref,
        "--calib",
        CALIB / f"{kind}-tiny.npz",
        "--out",
        tmp_path / out,
        *FAST,
        *args,
    )


def nodes(path: Path, op: str) -> list[onnx.NodeProto]:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op]


@pytest.mark.parametrize("kind", KINDS)
def test_int8_every_kind(cli, tmp_path, kind):
    r = q(cli, tmp_path, f"zoo:{kind}:tiny", "--json", tmp_path / "r.json")
    assert r.code == 0, r.err
    out = tmp_path / "q"
    m = json.loads((out / "edgekit.json").read_text())
    rep = m["checks"]["quantize"]
    written = json.loads((tmp_path / "r.json").read_text())  # the report envelope, then the body
    assert written["schema"] == "edgekit.quantize/1"
    body = {k: v for k, v in written.items() if k not in ENVELOPE_KEYS}
    assert m["stage"] == "quantize" and rep == body
    # the `cpu` scheme: 7-bit weights on x86 (right on AVX2 and VNNI alike), 8-bit on ARM64
    scheme = get_target("cpu").int8_schemes()[0]
    assert rep["precision"] == "int8" and rep["scheme"] == scheme.name
    assert scheme.reduce_range == (host_isa().arch == "x86_64")
    assert rep["cpu_isa"]["made_for"] == scheme.isa and rep["cpu_isa"]["note"] is None
    cal = rep["calibration"]
    assert cal["source"].endswith(f"{kind}-tiny.npz") and len(cal["sha256"]) == 64
    assert cal["calibration_samples"] + cal["holdout_samples"] == cal["n"]
    assert cal["holdout_samples"] >= 2
    assert rep["size_bytes"]["quantized"] < rep["size_bytes"]["fp32"]
    fid = rep["fidelity"]
    assert fid["rows"] and all(row["scope"] == "tick" for row in fid["rows"])
    assert 0 < fid["worst_rel_l2"] < 0.5  # real quantization error, not zero, not garbage
    assert rep["latency"]["measured"] is True and rep["latency"]["quantized_p50_ms"] > 0
    for entry in m["files"].values():
        assert nodes(out / entry["file"], "QuantizeLinear")
    r = cli("bench", out, "--ticks", "2", "--warmup", "0", "--budget-ms", "60000")
    assert r.code == 0, r.err


def test_graph_outputs_are_never_quantized(cli, tmp_path):
    """Regression: a Q/DQ on the reward head's output clipped held-out scores to a constant."""
    assert q(cli, tmp_path, "zoo:reward-model:tiny").code == 0
    g = onnx.load(str(tmp_path / "q" / "reward.onnx")).graph
    producer = {o: n for n in g.node for o in n.output}
    for out in g.output:
        node = producer[out.name]
        while node.op_type in ("Squeeze", "Reshape", "Unsqueeze"):
            node = producer[node.input[0]]
        assert node.op_type != "DequantizeLinear", out.name


def _zero_points(path: Path) -> list[np.ndarray]:
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return [
        inits[n.input[2]]
        for n in m.graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits
    ]


def test_jetson_scheme_is_symmetric_s8_on_inputs_only(cli, tmp_path):
    r = q(cli, tmp_path, "zoo:vla:tiny", "--target", "jetson-orin-nx")
    assert r.code == 0, r.err
    path = tmp_path / "q" / "policy.onnx"
    zps = _zero_points(path)
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    g = onnx.load(str(path)).graph
    readers = {i: n for n in g.node for i in n.input}
    for n in g.node:
        if n.op_type in ("Conv", "Gemm", "MatMul"):
            assert all(
                readers.get(o) is None or readers[o].op_type != "QuantizeLinear" for o in n.output
            ), n.name
    rep = json.loads((tmp_path / "q" / "edgekit.json").read_text())["checks"]["quantize"]
    assert rep["scheme"] == "tensorrt-s8s8" and "not Jetson" in rep["latency"]["where"]
    # TensorRT accumulates in int32: checked on the exact INT8 arithmetic, never on this CPU's
    # fused kernels (which saturate on AVX2: tests/test_isa.py)
    assert "Q/DQ unfused" in rep["fidelity"]["measured_on"]


def test_cpu_scheme_is_u8_activations_s8_per_channel_weights(cli, tmp_path):
    assert q(cli, tmp_path, "zoo:humanoid:tiny").code == 0
    path = tmp_path / "q" / "policy.onnx"
    assert all(z.dtype == np.uint8 for z in _zero_points(path))
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    weight_dq = [
        n
        for n in m.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in inits
        and inits[n.input[0]].dtype != np.int32  # int32 initializers are biases
    ]
    assert weight_dq
    for n in weight_dq:
        w, scale = inits[n.input[0]], inits[n.input[1]]
        assert w.dtype == np.int8 and scale.ndim == 1 and scale.size > 1  # per channel
        if len(n.input) > 2:
            assert not inits[n.input[2]].any()  # symmetric weights


def test_gate_fails_and_writes_nothing(cli, tmp_path):
    r = q(cli, tmp_path, "zoo:humanoid:tiny", "--max-error", "1e-9", "--json", tmp_path / "r.json")
    assert r.code == 1 and "fidelity gate missed" in r.err
    assert not (tmp_path / "q").exists()
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["fidelity"]["passed"] is False and rep["fidelity"]["max_error"] == 1e-9


def test_calib_is_required_and_synthetic_is_explicit(cli, tmp_path):
    r = cli("quantize", "zoo:humanoid:tiny", "--out", tmp_path / "q")
    assert r.code == 2 and "--calib is required" in r.err
    assert not (tmp_path / "q").exists()
    r = cli("quantize", "zoo:humanoid:tiny", "--calib", "synthetic", "--out", tmp_path / "q", *FAST)
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "q" / "edgekit.json").read_text())
    assert m["checks"]["quantize"]["calibration"]["source"] == "synthetic"


def test_calibration_of_another_model_is_refused(cli, tmp_path):
    r = cli(
        "quantize", "zoo:humanoid:tiny", "--calib", CALIB / "vla-tiny.npz", "--out", tmp_path / "q"
    )
    assert r.code == 2 and "vla-tiny.npz" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--precision", "int3"], "--precision 'int3'"),
        (["--method", "mse"], "--method 'mse'"),
        (["--precision", "int4", "--block-size", "48"], "--block-size 48"),
        (["--precision", "mixed"], "--precision mixed needs --max-error"),
        (["--block-size", "64"], "--block-size does not apply to --precision int8"),
        (["--max-error", "-1"], "--max-error -1.0: must be > 0"),
        (["--precision", "int4", "--target", "qcs6490"], "INT4 weight-only is not supported"),
        (["--target", "jetson-nano-x"], "unknown target"),
    ],
)
def test_bad_options(cli, tmp_path, args, needle):
    r = q(cli, tmp_path, "zoo:humanoid:tiny", *args)
    assert r.code == 2 and needle in r.err, r.err
    assert not (tmp_path / "q").exists()


def test_mixed_keeps_sensitive_layers_to_meet_the_budget(cli, tmp_path):
    full = q(
        cli, tmp_path, "zoo:diffusion-policy:tiny", "--json", tmp_path / "full.json", out="full"
    )
    assert full.code == 0, full.err
    err = json.loads((tmp_path / "full.json").read_text())["fidelity"]["worst_rel_l2"]
    budget = err / 2
    r = q(
        cli,
        tmp_path,
        "zoo:diffusion-policy:tiny",
        "--precision",
        "mixed",
        "--max-error",
        str(budget),
        "--json",
        tmp_path / "mixed.json",
    )
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "mixed.json").read_text())
    assert rep["fidelity"]["worst_rel_l2"] <= budget
    kept = rep["kept_float"]
    ranking = rep["extra"]["search"]["sensitivity"]
    assert 0 < len(kept) < len(ranking)
    assert kept == [row["layer"] for row in ranking[: len(kept)]]  # most sensitive first
    assert rep["size_bytes"]["quantized"] < rep["size_bytes"]["fp32"]


def test_mixed_budget_that_cannot_be_met(cli, tmp_path):
    r = q(cli, tmp_path, "zoo:humanoid:tiny", "--precision", "mixed", "--max-error", "1e-12")
    assert r.code == 1 and "not met even with" in r.err
    assert not (tmp_path / "q").exists()


def test_int4_cpu_matmulnbits(cli, tmp_path):
    r = q(cli, tmp_path, "zoo:vla:tiny", "--precision", "int4", "--json", tmp_path / "r.json")
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "r.json").read_text())
    stats = rep["extra"]["int4"]["policy"]
    assert rep["scheme"] == "int4-matmulnbits" and stats["matmuls_quantized"] > 0
    assert stats["gemms_rewritten"] > 0  # nn.Linear exported as Gemm is covered
    assert 4 <= stats["bits_per_weight"] < 32
    assert nodes(tmp_path / "q" / "policy.onnx", "MatMulNBits")
    assert rep["latency"]["measured"] is True


def test_int4_jetson_blocked_qdq(cli, tmp_path):
    r = q(
        cli,
        tmp_path,
        "zoo:humanoid:tiny",
        "--precision",
        "int4",
        "--target",
        "jetson-thor",
        "--block-size",
        "64",
    )
    assert r.code == 0, r.err
    dqs = nodes(tmp_path / "q" / "policy.onnx", "DequantizeLinear")
    blocked = [n for n in dqs if any(a.name == "block_size" and a.i == 64 for a in n.attribute)]
    assert blocked


def test_qualcomm_int8_on_the_htp_simulator(cli, tmp_path):
    pytest.importorskip("onnxruntime_qnn")
    r = q(cli, tmp_path, "zoo:humanoid:tiny", "--target", "qcs6490", "--json", tmp_path / "r.json")
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["scheme"] == "qnn-a8w8"  # no budget: the 8-bit scheme
    assert "HTP simulator" in rep["fidelity"]["measured_on"]
    assert rep["latency"]["measured"] is False  # simulator time is never device latency
    placement = rep["extra"]["placement"]["policy"]
    assert placement["qnn_nodes"] > 0 and "cpu_fallback" in placement
    zps = _zero_points(tmp_path / "q" / "policy.onnx")
    assert zps and all(z.dtype == np.uint8 for z in zps)  # A8W8: uint8 activations


def test_qualcomm_budget_tries_16_bit_activations(cli, tmp_path):
    pytest.importorskip("onnxruntime_qnn")
    r = q(
        cli,
        tmp_path,
        "zoo:humanoid:tiny",
        "--target",
        "qcs8550",
        "--max-error",
        "1e-9",
        "--json",
        tmp_path / "r.json",
    )
    assert r.code == 1
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [t["scheme"] for t in rep["extra"]["tried"]] == ["qnn-a8w8", "qnn-a16w8"]
    errors = [t["worst_rel_l2"] for t in rep["extra"]["tried"]]
    assert rep["fidelity"]["worst_rel_l2"] == min(errors)  # the better of the two is reported
    assert not (tmp_path / "q").exists()


def test_qrb5165_htp_cannot_be_targeted(cli, tmp_path):
    pytest.importorskip("onnxruntime_qnn")
    r = q(cli, tmp_path, "zoo:humanoid:tiny", "--target", "qrb5165")
    assert r.code == 3, r.err
    assert not (tmp_path / "q").exists()


def test_user_onnx_file_quantizes(cli, humanoid_artifact, tmp_path):
    r = cli(
        "quantize",
        humanoid_artifact / "policy.onnx",
        "--calib",
        "synthetic",
        "--out",
        tmp_path / "q",
        *FAST,
        "--json",
        tmp_path / "r.json",
    )
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["calibration"]["programs_run"] == ["single"]
    assert rep["fidelity"]["rows"][0]["output"] == "action"


def test_size_report_counts_external_data(cli, humanoid_artifact, tmp_path):
    from edgekit.onnxfile import onnx_bytes
    from edgekit.quantize.int4 import quantize_int4

    def model():  # a fresh copy: saving with external data changes the model in place
        return onnx.load(str(humanoid_artifact / "policy.onnx"))

    (tmp_path / "ext").mkdir()
    f, data = tmp_path / "ext" / "policy.onnx", tmp_path / "ext" / "policy.onnx.data"
    onnx.save_model(model(), f, save_as_external_data=True, location=data.name)  # >= 1 KiB
    shared = sum(
        len(t.external_data) > 0 for t in onnx.load(f, load_external_data=False).graph.initializer
    )
    assert shared > 1 and data.stat().st_size > 20_000  # the weights are beside it
    assert onnx_bytes(f) == f.stat().st_size + data.stat().st_size  # the data file once
    assert quantize_int4(f, tmp_path / "int4.onnx").fp32_bytes == onnx_bytes(f)
    one_each = tmp_path / "each" / "policy.onnx"
    one_each.parent.mkdir()
    onnx.save_model(
        model(),
        one_each,
        save_as_external_data=True,
        all_tensors_to_one_file=False,
        size_threshold=0,
    )
    assert len(list(one_each.parent.iterdir())) > shared + 1  # a file per tensor
    assert onnx_bytes(one_each) == sum(p.stat().st_size for p in one_each.parent.iterdir())

    r = cli("quantize", f, "--calib", "synthetic", "--out", tmp_path / "q", *FAST,
            "--json", tmp_path / "r.json")  # fmt: skip
    assert r.code == 0, r.err
    size = json.loads((tmp_path / "r.json").read_text())["size_bytes"]
    assert size["fp32"] == onnx_bytes(f)
    assert size["quantized"] == onnx_bytes(next((tmp_path / "q").glob("*.onnx")))
