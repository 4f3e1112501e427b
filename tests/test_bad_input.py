"""Bad input: one line, the documented exit code, no traceback, no partial output folder."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FIXTURES

USER = FIXTURES / "user_models.py"


def assert_clean_error(r, code: int, *needles: str) -> None:
    assert r.code == code, (r.code, r.err)
    assert r.err.startswith("error: ")
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err
    for n in needles:
        assert n in r.err, (n, r.err)


def test_missing_file(cli, tmp_path):
    r = cli("export", tmp_path / "nope.onnx", "--out", tmp_path / "o")
    assert_clean_error(r, 2, "nope.onnx", "no such file")
    assert not (tmp_path / "o").exists()


def test_random_bytes_named_onnx(cli, tmp_path):
    f = tmp_path / "junk.onnx"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = cli("export", f, "--out", tmp_path / "o")
    assert_clean_error(r, 2, "junk.onnx", "not a readable ONNX model")
    assert not (tmp_path / "o").exists()


def test_truncated_onnx(cli, humanoid_artifact, tmp_path):
    data = (humanoid_artifact / "policy.onnx").read_bytes()
    f = tmp_path / "cut.onnx"
    f.write_bytes(data[: len(data) // 3])
    r = cli("bench", f)
    assert_clean_error(r, 2, "cut.onnx")


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("zoo:humanoidd", "unknown zoo model 'humanoidd'; known:"),
        ("zoo:humanoid:huge", "unknown preset 'huge'; known: tiny, default"),
        ("zoo:", "expected zoo:NAME"),
        (f"{USER}:raises", "factory raised RuntimeError: checkpoint server unreachable"),
        (f"{USER}:not_a_module", "expected an nn.Module, got dict"),
        (f"{USER}:missing_fn", "has no callable 'missing_fn'"),
        (f"{USER}:bare_module", "pass --inputs"),
        ("no_such_pkg.mod:factory", "cannot import module 'no_such_pkg.mod'"),
    ],
)
def test_bad_model_references(cli, tmp_path, ref, needle):
    r = cli("export", ref, "--out", tmp_path / "o")
    assert_clean_error(r, 2, needle)
    assert not (tmp_path / "o").exists()


def test_inputs_wrong_shape_name_dtype(cli, tmp_path):
    cases = {
        "shape": {"obs": np.zeros((2, 11), np.float32)},
        "dtype": {"obs": np.zeros((2, 12), np.int32)},
    }
    for what, arrays in cases.items():
        f = tmp_path / f"{what}.npz"
        np.savez(f, **arrays)
        r = cli("export", f"{USER}:bare_module", "--inputs", f, "--out", tmp_path / "o")
        assert_clean_error(r, 2, "the model failed on inputs ['obs']")


def test_onnx_inputs_checked_against_graph(cli, humanoid_artifact, tmp_path):
    onnx_file = humanoid_artifact / "policy.onnx"
    for what, arrays, needle in [
        ("name", {"observation": np.zeros((1, 4, 84), np.float32)}, "missing ['obs_history']"),
        ("shape", {"obs_history": np.zeros((1, 5, 84), np.float32)}, "has shape [1, 5, 84]"),
        ("dtype", {"obs_history": np.zeros((1, 4, 84), np.float64)}, "has dtype float64"),
    ]:
        f = tmp_path / f"{what}.npz"
        np.savez(f, **arrays)
        r = cli("export", onnx_file, "--inputs", f, "--out", tmp_path / "o")
        assert_clean_error(r, 2, needle)
    assert not (tmp_path / "o").exists()


def test_existing_out_needs_force(cli, humanoid_artifact, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = cli("export", "zoo:humanoid:tiny", "--out", out)
    assert_clean_error(r, 2, "not empty", "--force")
    assert (out / "keep.txt").read_text() == "mine"
    r = cli("export", "zoo:humanoid:tiny", "--out", out, "--force")
    assert r.code == 0, r.err
    assert not (out / "keep.txt").exists() and (out / "edgekit.json").is_file()


def test_parity_failure_is_a_gate_and_leaves_nothing(cli, tmp_path):
    r = cli("export", f"{USER}:drifting", "--out", tmp_path / "o")
    assert_clean_error(r, 1, "parity", "network model.output", "over tolerance")
    assert not (tmp_path / "o").exists()
    assert list(tmp_path.iterdir()) == []


def test_pickle_refused_unless_opted_in(cli, tmp_path):
    import torch

    from tests.fixtures.user_models import TwoHead

    f = tmp_path / "model.pt"
    torch.save(TwoHead(), f)
    r = cli("export", f, "--out", tmp_path / "o")
    assert_clean_error(r, 2, "pickle", "--allow-pickle")
    samples = tmp_path / "s.npz"
    np.savez(samples, obs=np.zeros((2, 12), np.float32))
    r = cli("export", f, "--allow-pickle", "--inputs", samples, "--out", tmp_path / "o")
    assert r.code == 0, r.err


def test_external_data_outside_folder_refused(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [w],
    )
    model = helper.make_model(graph)
    w = model.graph.initializer[0]
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("float_data")
    w.external_data.add(key="location", value="../../etc/passwd")
    f = tmp_path / "evil.onnx"
    onnx.save(model, f)
    r = cli("export", f, "--out", tmp_path / "o")
    assert_clean_error(r, 2, "outside the model's folder")


def test_debug_shows_traceback(cli, tmp_path):
    r = cli("--debug", "export", "zoo:nope", "--out", tmp_path / "o")
    assert r.code == 2 and "Traceback" in r.err
