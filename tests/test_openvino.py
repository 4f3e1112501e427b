"""The OpenVINO runtime: the same tick as onnxruntime, precision always explicit, bf16 only where
the CPU computes it, and the same commands (bench, eval, edgekit.Policy) on it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgekit.errors import BadInputError
from edgekit.isa import CpuIsa, classify, host_isa
from edgekit.loader import load
from edgekit.loop import TickContext
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime
from tests.conftest import ROOT

pytest.importorskip("openvino")

from edgekit.runtimes.openvino import OpenVinoRuntime

QUICK = ("--ticks", "3", "--warmup", "0", "--budget-ms", "60000")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Three shapes of tick: a history MLP, an encoder + 16-step denoiser, token inputs."""
    from edgekit.export import export_onnx

    root = tmp_path_factory.mktemp("ov")
    return {k: export_onnx(load(f"zoo:{k}:tiny"), root / k).out
            for k in ("humanoid", "diffusion-policy", "vla")}  # fmt: skip


@pytest.mark.parametrize("kind", ["humanoid", "diffusion-policy", "vla"])
def test_openvino_runs_the_tick_onnxruntime_runs(artifacts, kind):
    src = load(str(artifacts[kind]))
    ort_rt, ov_rt = OrtRuntime(src.files, threads=1), OpenVinoRuntime(src.files, threads=1)
    a, b = build_program(src.spec.program), build_program(src.spec.program)
    rng = np.random.default_rng(0)
    a.reset(3)
    b.reset(3)
    for _ in range(4):  # state, history and chunk queues carried alike
        obs = a.sample_observation(rng)
        want, got = a.tick(TickContext(ort_rt), obs), b.tick(TickContext(ov_rt), obs)
        assert want.keys() == got.keys()
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=2e-4, err_msg=k)
    settings = ov_rt.settings()
    assert settings["inference_precision"] == "f32"
    # what the plugin compiled, read back: never a silent bf16 on a CPU that has it
    assert set(settings["compiled_precision"].values()) == {"f32"}, settings


def test_bench_on_openvino_reports_its_settings(cli, artifacts, tmp_path):
    rep = tmp_path / "b.json"
    r = cli("bench", artifacts["diffusion-policy"], "--runtime", "openvino", *QUICK,
            "--json", rep)  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(rep.read_text())
    assert report["runtime"]["runtime"] == "openvino"
    assert report["runtime"]["inference_precision"] == "f32"
    assert any("inference precision f32" in n for n in report["notes"])


def _no_bf16() -> CpuIsa:
    return classify("x86_64", {"AVX2": True}, {"avx2"}, "an AVX2-only CPU")


def test_bf16_is_refused_where_the_cpu_has_no_bf16(cli, artifacts, monkeypatch):
    import edgekit.runtimes.openvino as ov_module

    monkeypatch.setattr(ov_module, "host_isa", _no_bf16, raising=False)
    monkeypatch.setattr("edgekit.isa.host_isa", _no_bf16)
    r = cli("bench", artifacts["humanoid"], "--runtime", "openvino", "--precision", "bf16", *QUICK)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "--precision bf16" in r.err and "neither AVX-512 BF16 nor AMX" in r.err, r.err
    with pytest.raises(BadInputError, match="bf16"):
        OpenVinoRuntime(load(str(artifacts["humanoid"])).files, 1, "bf16")


def test_bf16_runs_where_the_cpu_has_it(cli, artifacts, tmp_path):
    if not host_isa().has_bf16:
        pytest.skip(f"this CPU has no bf16 ({', '.join(host_isa().features)}); refusal tested")
    rep = tmp_path / "b.json"
    r = cli("bench", artifacts["humanoid"], "--runtime", "openvino", "--precision", "bf16",
            *QUICK, "--json", rep)  # fmt: skip
    assert r.code == 0, r.err
    settings = json.loads(rep.read_text())["runtime"]
    assert settings["inference_precision"] == "bf16"
    assert set(settings["compiled_precision"].values()) == {"bf16"}, settings


def test_bf16_detection_under_an_avx2_cpu():
    """What an AVX2-only host reports (QEMU's Haswell has no AVX-512, so no BF16)."""
    if host_isa().arch != "x86_64" or not shutil.which("qemu-x86_64"):
        pytest.skip("needs an x86 host with qemu-user (make test installs it)")
    r = subprocess.run(
        ["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c",
         "from edgekit.isa import host_isa; i = host_isa(); print(i.name, i.has_bf16)"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-1000:]
    assert r.stdout.split() == ["x86-avx2", "False"], r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--runtime", "ort", "--precision", "bf16"), "sets OpenVINO's inference precision"),
        (("--runtime", "openvino", "--precision", "int8"), "OpenVINO runs fp32 or bf16"),
        (("--target", "jetson-orin-nx", "--precision", "bf16"), "estimates take fp32"),
    ],
)
def test_precision_misuse_is_one_line(cli, artifacts, args, needle):
    r = cli("bench", artifacts["humanoid"], *args, *QUICK)
    assert r.code == 2 and needle in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_policy_and_eval_on_openvino(cli, artifacts, tmp_path):
    import edgekit

    policy = edgekit.Policy.load(artifacts["vla"], runtime="openvino", budget_ms=60000)
    twin = edgekit.Policy.load(artifacts["vla"], runtime="ort", budget_ms=60000)
    rng = np.random.default_rng(1)
    for _ in range(3):
        obs = policy.program.sample_observation(rng)
        got, want = policy.act(obs), twin.act(obs)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=2e-4)
    assert policy.report()["runtime"] == "openvino"
    pytest.importorskip("gymnasium")
    rep = tmp_path / "e.json"
    r = cli("eval", "zoo:humanoid:reacher", "--runtime", "openvino", "-n", "1", "--teacher",
            "none", "--json", rep)  # fmt: skip
    assert r.code == 0, r.err
    assert json.loads(rep.read_text())["runtime"].startswith("OpenVINO CPU plugin (f32)")


@pytest.fixture(scope="module")
def ov_int8(artifacts, tmp_path_factory):
    """The zoo VLA quantized with NNCF for OpenVINO (its shipped calibration set)."""
    pytest.importorskip("nncf")
    from edgekit.quantize import Int8Config, quantize

    out = tmp_path_factory.mktemp("ovq") / "vla-int8"
    config = Int8Config(runtime="openvino", latency_ticks=0)
    res = quantize(load(str(artifacts["vla"])), out, config, str(ROOT / "calib_data" /
                   "vla-tiny.npz"))  # fmt: skip
    assert res.written
    return out, res


def test_nncf_int8_for_openvino_is_an_ir_artifact_measured_on_the_tick(ov_int8, cli, tmp_path):
    out, res = ov_int8
    manifest = json.loads((out / "edgekit.json").read_text())
    assert manifest["format"] == "openvino"
    assert {e["file"] for e in manifest["files"].values()} == {"policy.xml", "policy.bin"}
    rep = res.report
    assert rep["scheme"].startswith("openvino-nncf-int8") and rep["scheme_detail"]["tool"]
    assert rep["scheme_detail"]["overflow_fix"].startswith(
        "enable" if host_isa().saturates_u8s8 else "disable"
    )
    assert rep["extra"]["choices"][0]["choice"] == "NNCF defaults"  # every choice reported
    worst = max(r["rel_l2"] for r in rep["fidelity"]["rows"] if r["rel_l2"] is not None)
    assert 0 < worst < 0.15, worst  # INT8, measured on the whole tick against FP32
    assert "i8" in (out / "policy.xml").read_text()  # INT8 weights on disk
    # it runs where it is made for, and says so where it is not
    r = cli("bench", out, "--runtime", "openvino", *QUICK)
    assert r.code == 0, r.err
    r = cli("bench", out, *QUICK)
    assert (
        r.code == 2 and "OpenVINO IR, not ONNX: run this artifact with --runtime openvino" in r.err
    )
    import edgekit

    policy = edgekit.Policy.load(out, runtime="openvino", budget_ms=60000)
    act = policy.act(policy.program.sample_observation(np.random.default_rng(0)))
    assert all(np.isfinite(v).all() for v in act.values())
    # its weights are hashed like any artifact file
    tampered = tmp_path / "t"
    shutil.copytree(out, tampered)
    with open(tampered / "policy.bin", "ab") as f:
        f.write(b"\0")
    r = cli("bench", tampered, "--runtime", "openvino", *QUICK)
    assert r.code == 2 and "files.policy.bin.sha256" in r.err, r.err


def test_openvino_int8_is_for_cpu_targets(cli, artifacts, tmp_path):
    r = cli("quantize", artifacts["humanoid"], "--runtime", "openvino", "--target",
            "jetson-orin-nx", "--calib", "synthetic", "--out", tmp_path / "q")  # fmt: skip
    assert r.code == 2 and "OpenVINO is for CPU targets" in r.err, r.err
    assert not (tmp_path / "q").exists()


def test_the_nncf_search_tries_every_plan_to_the_budget_and_reports_each(artifacts, tmp_path):
    """A budget no INT8 meets: every NNCF setting is tried (one network: none kept in float),
    each measured on the whole tick and reported, and nothing is written."""
    pytest.importorskip("nncf")
    from edgekit.quantize import Int8Config, quantize
    from edgekit.quantize.openvino import PLANS

    config = Int8Config(runtime="openvino", latency_ticks=0, max_error=1e-6)
    res = quantize(load(str(artifacts["humanoid"])), tmp_path / "q", config, "synthetic")
    assert not res.written and not (tmp_path / "q").exists()
    choices = res.report["extra"]["choices"]
    assert [c["choice"] for c in choices] == list(PLANS)
    assert all(c["met"] is False and c["value"] > 1e-6 for c in choices)
    assert res.report["extra"]["chosen"]["why"] == "closest to the budget"
