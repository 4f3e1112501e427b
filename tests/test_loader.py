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


TOKEN_MODEL = """
import torch
from torch import nn
from edgekit.spec import TensorSpec

class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(50, 4)

    def forward(self, tokens):
        return self.emb(tokens).mean(1)

def make():
    return Tokens(), [TensorSpec("tokens", ("batch", 8), "int64"{extra})]
"""


def test_int_input_without_range_is_refused(cli, tmp_path):
    from tests.hostile import check_clean_error

    f, out = tmp_path / "tok.py", tmp_path / "o"
    f.write_text(TOKEN_MODEL.format(extra=""))
    r = cli("export", f"{f}:make", "--out", out)
    check_clean_error(r.code, r.err, 2, [f"{f}:make", "'tokens'", "low/high", "high=32000"])
    assert not out.exists()
    f.write_text(TOKEN_MODEL.format(extra=", high=50"))
    r = cli("export", f"{f}:make", "--out", out)
    assert r.code == 0, r.err
    ins = json.loads((out / "edgekit.json").read_text())["model"]["networks"][0]["inputs"]
    assert (ins[0]["low"], ins[0]["high"]) == (0, 50)


class Pick:  # built lazily: torch is imported inside the tests
    @staticmethod
    def module():
        import torch

        class _Pick(torch.nn.Module):
            def forward(self, tokens):
                return tokens.argmax(-1)

        return _Pick()


def test_npz_int_inputs_and_outputs_get_their_seen_range(tmp_path):
    from edgekit.loader.torch_files import torch_source

    f = tmp_path / "s.npz"
    np.savez(f, tokens=np.array([[3, 9, 4], [7, 5, 8]], np.int64))
    net = torch_source("pick", Pick.module(), f, 50.0, "factory").spec.networks[0]
    t, o = net.inputs[0], net.outputs[0]
    assert (t.sampler, t.low, t.high) == ("int", 3, 10)
    assert (o.dtype, o.low, o.high) == ("int64", 1, 3)  # argmax of the rows: 1 and 2


def test_pt2_int_input_needs_sample_inputs(tmp_path):
    import torch

    from edgekit.errors import InputSpecError

    f, npz = tmp_path / "pick.pt2", tmp_path / "s.npz"
    tokens = torch.tensor([[3, 9, 4], [7, 5, 8]])
    torch.export.save(torch.export.export(Pick.module(), (tokens,)), f)
    with pytest.raises(InputSpecError, match=r"'tokens' is int64.*--inputs"):
        load(str(f))
    np.savez(npz, tokens=tokens.numpy())
    src = load(str(f), inputs=npz)
    assert src.spec.networks[0].inputs[0].high == 10
