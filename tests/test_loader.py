"""Model references: zoo, factories, ONNX files, torch.export archives, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.errors import ModelLoadError
from edgekit.loader import OnnxSource, TorchSource, load
from tests.conftest import FIXTURES

USER = FIXTURES / "user_models.py"


@pytest.mark.parametrize("factory", ["with_specs", "as_user_model"])
def test_file_factory_exports_and_benches(cli, tmp_path, factory):
    out = tmp_path / "o"
    r = cli("export", f"{USER}:{factory}", "--out", out)
    assert r.code == 0, r.err
    m = json.loads((out / "edgekit.json").read_text())
    net = m["model"]["networks"][0]
    assert [o["name"] for o in net["outputs"]] == ["output_0", "output_1"]
    assert net["inputs"][0]["shape"] == ["batch", 12]
    r = cli(
        "bench",
        out,
        "--ticks",
        "3",
        "--warmup",
        "0",
        "--budget-ms",
        "60000",
        "--json",
        tmp_path / "b.json",
    )
    assert r.code == 0, r.err
    rep = json.loads((tmp_path / "b.json").read_text())
    assert rep["loop"]["hz"] == (100.0 if factory == "as_user_model" else 50.0)


def test_module_factory_reference():
    src = load("tests.fixtures.user_models:with_specs")
    assert isinstance(src, TorchSource) and src.spec.networks[0].input_names == ["obs"]


def test_npz_inputs_for_bare_module(tmp_path):
    f = tmp_path / "s.npz"
    np.savez(f, obs=np.ones((3, 12), np.float32))
    src = load(f"{USER}:bare_module", inputs=f)
    assert isinstance(src, TorchSource)
    assert src.spec.networks[0].inputs[0].shape == ("batch", 12)
    assert src.sample_inputs["model"]["obs"].shape == (3, 12)


def test_onnx_file_roundtrip(cli, humanoid_artifact, tmp_path):
    out = tmp_path / "o"
    r = cli("export", humanoid_artifact / "policy.onnx", "--out", out)
    assert r.code == 0, r.err
    m = json.loads((out / "edgekit.json").read_text())
    assert m["source"]["type"] == "onnx"
    assert m["checks"]["parity"]["reference"] == "ort-unoptimized"
    assert m["checks"]["parity"]["passed"] is True
    r = cli("bench", out, "--ticks", "2", "--warmup", "0", "--budget-ms", "60000")
    assert r.code == 0, r.err
    r = cli("bench", out, "--runtime", "torch")
    assert r.code == 2 and "made from an ONNX file" in r.err


def test_artifact_is_a_source(humanoid_artifact):
    src = load(str(humanoid_artifact))
    assert isinstance(src, OnnxSource)
    assert src.origin["ref"] == "zoo:humanoid:tiny"
    assert src.spec.program.name == "humanoid-history"


def test_tampered_artifact_is_refused(humanoid_artifact, tmp_path):
    import shutil

    copy = tmp_path / "art"
    shutil.copytree(humanoid_artifact, copy)
    with open(copy / "policy.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelLoadError.__mro__[1], match="sha256 does not match"):
        load(str(copy))


def test_pt2_archive(tmp_path, cli):
    import torch

    from tests.fixtures.user_models import TwoHead

    ep = torch.export.export(TwoHead(), (torch.randn(2, 12),))
    f = tmp_path / "m.pt2"
    torch.export.save(ep, f)
    src = load(str(f))
    assert isinstance(src, TorchSource)
    assert src.spec.networks[0].inputs[0].shape == (2, 12)
    r = cli("export", f, "--out", tmp_path / "o")
    assert r.code == 0, r.err


def test_safetensors_weights(tmp_path, cli):
    import torch
    from safetensors.torch import save_file

    base = load("zoo:humanoid:tiny")
    assert isinstance(base, TorchSource)
    state = {k: v + 0.01 for k, v in base.module.state_dict().items()}
    f = tmp_path / "w.safetensors"
    save_file(state, str(f))
    trained = load("zoo:humanoid:tiny", weights=f)
    assert isinstance(trained, TorchSource)
    assert trained.sha256 != base.sha256
    for k, v in trained.module.state_dict().items():
        assert torch.equal(v, state[k])
    # exported artifact remembers the weights; --runtime torch rebuilds the same model
    out = tmp_path / "o"
    assert cli("export", "zoo:humanoid:tiny", "--weights", f, "--out", out).code == 0
    assert json.loads((out / "edgekit.json").read_text())["source"]["weights"] == str(f)
    assert (
        cli(
            "bench",
            out,
            "--runtime",
            "torch",
            "--ticks",
            "2",
            "--warmup",
            "0",
            "--budget-ms",
            "60000",
        ).code
        == 0
    )
    # weights of another model are refused with the mismatching keys
    save_file({"nope": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    r = cli(
        "export",
        "zoo:humanoid:tiny",
        "--weights",
        tmp_path / "bad.safetensors",
        "--out",
        tmp_path / "o2",
    )
    assert r.code == 2 and "does not fit zoo:humanoid:tiny" in r.err and "missing" in r.err


def test_same_seed_same_weights():
    a, b = load("zoo:humanoid:tiny"), load("zoo:humanoid:tiny")
    assert isinstance(a, TorchSource) and isinstance(b, TorchSource)
    assert a.sha256 == b.sha256
