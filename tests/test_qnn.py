"""Qualcomm HTP path on the QNN HTP simulator: quantize, place, run, compile context binaries.

Tiny torch models exported with static shapes (batch 1), calibrated on structured signals, run
on the x86 HTP simulator shipped in onnxruntime-qnn and compared with FP32 onnxruntime CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime_qnn")
torch = pytest.importorskip("torch")

from edgekit.artifacts import load_artifact  # noqa: E402
from edgekit.errors import BackendMissingError, BadInputError  # noqa: E402
from edgekit.export import qnn as export_qnn_mod  # noqa: E402
from edgekit.loop import SingleCall, TickContext  # noqa: E402
from edgekit.quantize import qnn  # noqa: E402
from edgekit.runtimes import htp  # noqa: E402


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(32, 64), torch.nn.Linear(64, 16)
        self.norm = torch.nn.LayerNorm(64)

    def forward(self, x):
        return self.b(torch.nn.functional.gelu(self.norm(self.a(x))))


class Conv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv1d(6, 16, 3, padding=1)
        self.c2 = torch.nn.Conv1d(16, 8, 3, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


def _signals(shape: tuple[int, ...], n: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Smooth multi-channel trajectories (random frequency/phase/amplitude/offset per channel,
    bounded so calibration covers the range), like proprioception over a short horizon."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, shape[-1])
    feeds = []
    for _ in range(n):
        lead = (*shape[:-1], 1)
        f, ph = rng.uniform(0.5, 3, lead), rng.uniform(0, 2 * np.pi, lead)
        amp, off = rng.uniform(0.3, 1.5, lead), rng.uniform(-0.5, 0.5, lead)
        feeds.append({"x": (amp * np.sin(2 * np.pi * f * t + ph) + off).astype(np.float32)})
    return feeds


def _rel_l2(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    x, y = np.concatenate([v.ravel() for v in a]), np.concatenate([v.ravel() for v in b])
    return float(np.linalg.norm(x - y) / np.linalg.norm(y))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Both models exported (static shapes), quantized A8W8, A16W8 and A16W8 per-channel."""
    import onnxruntime as ort

    root = tmp_path_factory.mktemp("qnn")
    torch.manual_seed(0)
    out: dict = {}
    for name, module, shape in (("mlp", Mlp(), (1, 32)), ("conv", Conv(), (1, 6, 32))):
        fp32 = root / f"{name}.onnx"
        torch.onnx.export(
            module.eval(), (torch.zeros(shape),), str(fp32), dynamo=True, external_data=False,
            input_names=["x"], output_names=["y"], verbose=False,
        )  # fmt: skip
        calib, evals = _signals(shape, 64, seed=1), _signals(shape, 8, seed=2)
        cpu = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
        entry = {"fp32": fp32, "evals": evals, "ref": [cpu.run(None, f)[0] for f in evals]}
        for tag, bits, pc in (("a8w8", 8, False), ("a16w8", 16, False), ("a16w8pc", 16, True)):
            path = root / f"{name}.{tag}.onnx"
            entry[tag] = path
            entry[f"{tag}.summary"] = qnn.qnn_quantize(fp32, path, calib, bits, per_channel=pc)
        out[name] = entry
    return out


def test_quantize_summary(models):
    s8, s16, spc = (models["mlp"][f"{t}.summary"] for t in ("a8w8", "a16w8", "a16w8pc"))
    assert (s8["activation_type"], s8["weight_type"]) == ("uint8", "uint8") and not s8[
        "per_channel"
    ]
    assert (s16["activation_type"], spc["weight_type"]) == ("uint16", "int8") and spc["per_channel"]
    assert s8["calibration_samples"] == 64 and s8["fixed_shapes"] == {}
    assert s8["quantize_linear"] > 0 and s8["dequantize_linear"] > s8["quantize_linear"]
    folder = Path(s8["path"]).parent
    assert not [p for p in folder.iterdir() if p.suffix not in (".onnx",)]  # single-file models


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_a16w8_more_faithful_than_a8w8(models, net):
    m = models[net]
    err = {}
    for tag in ("a8w8", "a16w8"):
        rt = htp.HtpRuntime({net: m[tag]}, "qcs8550")
        err[tag] = _rel_l2([rt.run(net, f)["y"] for f in m["evals"]], m["ref"])
    print(f"{net} rel-L2 vs FP32: {err}")
    assert err["a16w8"] < 0.02, err
    assert err["a8w8"] < 0.15, err
    assert err["a16w8"] < err["a8w8"] or err["a8w8"] < 0.005, err


def test_placement_all_on_htp_and_per_channel_layernorm_fallback(models):
    m = models["mlp"]
    rt = htp.HtpRuntime({"tensor": m["a16w8"], "channel": m["a16w8pc"]}, "qcs6490")
    p = rt.placement()
    t = p["tensor"]
    assert t["fully_on_qnn"] and t["qnn_partitions"] == 1 and not t["cpu_fallback"]
    assert t["total_nodes"] == t["qnn_nodes"] + len(t["cpu_io_quantization"]) > 10
    io_ops = {r["op_type"] for r in t["cpu_io_quantization"]}
    assert io_ops == {"QuantizeLinear", "DequantizeLinear"}
    c = p["channel"]  # per-channel LayerNorm weights: the HTP op builder rejects them
    assert not c["fully_on_qnn"]
    assert "LayerNormalization" in {r["op_type"] for r in c["cpu_fallback"]}
    assert all(r["name"] and r["ep"] == "CPUExecutionProvider" for r in c["cpu_fallback"])
    assert c["qnn_partitions"] >= 1 and c["qnn_nodes"] < c["total_nodes"]
    # the fallback model still computes the right thing
    err = _rel_l2([rt.run("channel", f)["y"] for f in m["evals"]], m["ref"])
    assert err < 0.05


def test_strict_refuses_cpu_fallback(models):
    with pytest.raises(BadInputError, match="fallback"):
        htp.HtpRuntime({"m": models["mlp"]["a16w8pc"]}, "qcs8550", strict=True)
    rt = htp.HtpRuntime({"m": models["mlp"]["a16w8"]}, "qcs8550", strict=True)
    assert rt.placement()["m"]["qnn_nodes"] == rt.placement()["m"]["total_nodes"]


def test_runtime_protocol_settings_and_reregistration(models):
    m = models["conv"]
    a = htp.HtpRuntime({"policy": m["a8w8"]}, "rb3", threads=2)  # alias of qcs6490
    b = htp.HtpRuntime({"policy": m["a8w8"]}, "sd8gen3")  # registers nothing twice
    s = a.settings()
    assert s["simulator"] is True and "not device latency" in s["note"]
    assert (s["target"], s["htp_arch"], s["soc_model"]) == ("qcs6490", 68, 93)
    assert b.settings()["htp_arch"] == 75 and s["intra_op_threads"] == 2
    assert s["onnxruntime"] and s["onnxruntime_qnn"] and s["qnn_sdk"]
    prog = SingleCall({"network": "policy", "inputs": []})
    ctx = TickContext(a)
    out = prog.tick(ctx, m["evals"][0])
    assert out["y"].shape == m["ref"][0].shape and ctx.calls == {"policy": 1}
    other = b.run("policy", m["evals"][0])["y"]  # v75 kernels may round differently than v68
    print("v68 vs v75 max-abs:", float(np.abs(out["y"] - other).max()))
    np.testing.assert_allclose(out["y"], other, atol=0.05 * float(np.abs(other).max()))


@pytest.mark.parametrize(("target", "arch"), [("qcs6490", 68), ("qcs8550", 73)])
def test_compile_context(models, tmp_path, target, arch):
    m = models["mlp"]
    r = export_qnn_mod.compile_context(m["a16w8"], tmp_path / target, target, feeds=m["evals"][0])
    ctx = Path(r["context_model"])
    assert ctx.name == "mlp.a16w8_ctx.onnx" and ctx.exists()
    assert len(r["context_binaries"]) == 1 and Path(r["context_binaries"][0]).suffix == ".bin"
    assert all(size > 0 for size in r["sizes"].values())
    assert r["htp_arch"] == arch and f":{arch}:" in r["ep_compatibility"]
    assert r["ep_sdk_version"] and r["qnn_sdk"]
    assert r["max_abs_diff"] == 0.0
    assert r["context_placement"]["qnn_partitions"] == 1
    assert sorted(p.name for p in ctx.parent.iterdir()) == sorted(r["sizes"])  # no staging left


def test_refusals(models, tmp_path):
    with pytest.raises(BackendMissingError, match="v66"):
        htp.HtpRuntime({"m": models["mlp"]["a8w8"]}, "qrb5165")
    with pytest.raises(BadInputError, match="not a Qualcomm HTP target"):
        htp.HtpRuntime({"m": models["mlp"]["a8w8"]}, "jetson-orin-nano")
    fp32 = models["mlp"]["fp32"]
    with pytest.raises(BadInputError, match="no calibration samples"):
        qnn.qnn_quantize(fp32, tmp_path / "q.onnx", [])
    with pytest.raises(BadInputError, match="8 or 16"):
        qnn.qnn_quantize(fp32, tmp_path / "q.onnx", _signals((1, 32), 2, 0), activation_bits=4)
    with pytest.raises(BadInputError, match="expects"):
        qnn.qnn_quantize(fp32, tmp_path / "q.onnx", _signals((1, 31), 2, 0))


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime_qnn", None)  # import now raises ImportError
    with pytest.raises(BackendMissingError, match=r"pip install 'edgekit\[qnn\]'"):
        htp.HtpRuntime({}, "qcs8550")


def test_dynamic_batch_is_fixed_to_calibration_shape(tmp_path):
    fp32 = tmp_path / "dyn.onnx"
    torch.manual_seed(0)
    torch.onnx.export(
        Mlp().eval(), (torch.zeros(2, 32),), str(fp32), dynamo=True, external_data=False,
        input_names=["x"], output_names=["y"], dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )  # fmt: skip
    s = qnn.qnn_quantize(fp32, tmp_path / "dyn.qdq.onnx", _signals((1, 32), 4, 0), 16)
    assert s["fixed_shapes"] == {"x": [1, 32]}
    rt = htp.HtpRuntime({"m": tmp_path / "dyn.qdq.onnx"}, "qcs8550")
    assert rt.placement()["m"]["fully_on_qnn"]


def test_groupnorm_relu_with_zero_beta_matches_cpu(tmp_path):
    """Conv -> GroupNorm (default init: beta all zero) -> ReLU. With the ReLU folded into the
    quantization range (the quantizer's default) the HTP simulator computed garbage (rel-L2 ~2
    vs the same QDQ on CPU); qnn_quantize keeps the ReLU explicit."""

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm = torch.nn.Conv1d(6, 32, 3, padding=1), torch.nn.GroupNorm(8, 32)

        def forward(self, x):
            return torch.relu(self.norm(self.conv(x)))

    torch.manual_seed(0)
    fp32 = tmp_path / "gn.onnx"
    torch.onnx.export(
        Block().eval(), (torch.zeros(1, 6, 16),), str(fp32), dynamo=True, external_data=False,
        input_names=["x"], output_names=["y"], verbose=False,
    )  # fmt: skip
    qnn.qnn_quantize(fp32, tmp_path / "gn.qdq.onnx", _signals((1, 6, 16), 32, 1))
    check = qnn.htp_vs_cpu(tmp_path / "gn.qdq.onnx", "qcs8550", _signals((1, 6, 16), 4, 2))
    assert check["max_rel_l2"] < 0.02, check


# --- edgekit export --format qnn --------------------------------------------------------------


@pytest.fixture(scope="module")
def htp_artifacts(tmp_path_factory):
    """The tiny humanoid quantized for two HTP architectures (v68 and v73)."""
    pytest.importorskip("onnxruntime_qnn")
    from edgekit.quantize import Int8Config, quantize

    base = tmp_path_factory.mktemp("htp")
    out = {}
    for target in ("qcs6490", "qcs8550"):
        quantize(
            "zoo:humanoid:tiny",
            base / target,
            Int8Config(target=target, latency_ticks=0),
            "calib_data/humanoid-tiny.npz",
        )
        out[target] = base / target
    return out


@pytest.mark.parametrize(("target", "arch"), [("qcs6490", 68), ("qcs8550", 73)])
def test_qnn_context_binaries_for_two_htp_architectures(cli, tmp_path, htp_artifacts, target, arch):
    import onnx

    out = tmp_path / "ctx"
    r = cli("export", htp_artifacts[target], "--format", "qnn", "--out", out, "--strict")
    assert r.code == 0, r.err
    art = load_artifact(out)
    rep = art.manifest.checks["qnn"]
    assert art.manifest.format == "qnn" and rep["htp_arch"] == arch
    ctx = onnx.load(str(art.file("policy")), load_external_data=False)
    assert [n.op_type for n in ctx.graph.node].count("EPContext") == 1
    assert all((out / b).is_file() and (out / b).stat().st_size > 0 for b in rep["binaries"])
    assert rep["contexts"]["policy"]["max_abs_diff"] == 0.0  # reloaded context == QDQ on HTP
    assert rep["cpu_fallback"] == {"policy": []}
    assert rep["fidelity"]["reference"].startswith("FP32 PyTorch zoo:humanoid:tiny")
    assert 0 < rep["fidelity"]["worst_rel_l2"] < 0.1
    assert rep["device_needs"]["qnn_sdk"] and rep["latency"]["measured"] is False
    assert "not device latency" in r.out


def test_qnn_artifact_benches_as_an_estimate_with_a_simulator_check(cli, tmp_path, htp_artifacts):
    import json

    out = tmp_path / "ctx"
    assert cli("export", htp_artifacts["qcs6490"], "--format", "qnn", "--out", out).code == 0
    r = cli("bench", out, "--target", "qcs6490", "--json", tmp_path / "b.json")
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "b.json").read_text())
    assert rep["measurement"]["kind"] == "estimated" and rep["estimate"]["precision"] == "int8"
    assert any("HTP simulator" in n or "qnn-htp-sim" in n for n in rep["notes"])
    assert "stats_ms" not in rep


def test_qnn_strict_fails_on_a_fidelity_miss_and_writes_nothing(cli, tmp_path, htp_artifacts):
    out = tmp_path / "ctx"
    r = cli(
        "export", htp_artifacts["qcs6490"], "--format", "qnn", "--out", out, "--strict",
        "--max-error", "1e-9",
    )  # fmt: skip
    assert r.code == 1 and "--strict" in r.err and not out.exists()


def test_qnn_export_needs_an_htp_quantized_artifact(cli, tmp_path, humanoid_artifact):
    r = cli("export", humanoid_artifact, "--format", "qnn", "--out", tmp_path / "c")
    assert r.code == 2 and "not quantized for a Qualcomm HTP target" in r.err
    r = cli("export", "zoo:humanoid:tiny", "--format", "qnn", "--out", tmp_path / "c")
    assert r.code == 2 and "quantize" in r.err
    assert not (tmp_path / "c").exists()
