"""INT4 weight-only quantization (edgekit.quantize.int4) on tiny exported torch models."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from edgekit.errors import BadInputError, ModelLoadError
from edgekit.quantize.int4 import Int4Stats, gemm_to_matmul, quantize_int4


class MLP(nn.Module):
    """Linear layers on a 2-D input: the dynamo exporter writes them as Gemm. Odd widths."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(64, 320), nn.Linear(320, 14), nn.Linear(14, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


class Block(nn.Module):
    """Transformer-ish block on (B, T, D): Linear layers export as MatMul + Add."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.f1, self.f2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        att = torch.softmax(self.q(h) @ self.k(h).transpose(-1, -2) / 8.0, dim=-1)
        x = x + self.o(att @ self.v(h))
        return x + self.f2(torch.relu(self.f1(x)))


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(8, 16, 3, padding=1), nn.Conv1d(16, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(torch.relu(self.c1(x)))


SAMPLE_SHAPES = {"mlp": (5, 64), "block": (3, 10, 64), "conv": (3, 8, 20)}
# measured relative-L2 error vs FP32 (seed 0, all 12 settings): mlp 0.041-0.069, block 0.024-0.026
ERR_BOUND = {"mlp": 0.12, "block": 0.05}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """The three tiny models exported once: dynamo, one file, dynamic batch axis."""
    out = tmp_path_factory.mktemp("int4")
    torch.manual_seed(0)
    paths = {}
    for name, module in (("mlp", MLP()), ("block", Block()), ("conv", ConvNet())):
        path = out / f"{name}.onnx"
        x = torch.randn(*SAMPLE_SHAPES[name])
        torch.onnx.export(
            module.eval(),
            (x,),
            str(path),
            dynamo=True,
            external_data=False,
            opset_version=20,
            input_names=["x"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        paths[name] = path
    return paths


def _x(name: str, batch: int | None = None) -> np.ndarray:
    shape = SAMPLE_SHAPES[name]
    shape = (batch or shape[0], *shape[1:])
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def _run(model: Path | onnx.ModelProto, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


# ---------------------------------------------------------------- gemm_to_matmul


def test_gemm_to_matmul_is_exact_on_exported_linear_layers(models):
    fp32 = onnx.load(str(models["mlp"]))
    assert _ops(fp32).count("Gemm") == 3  # the trap: 2-D nn.Linear exports as Gemm
    rewritten, count = gemm_to_matmul(fp32)
    assert count == 3
    assert "Gemm" not in _ops(rewritten) and _ops(rewritten).count("MatMul") == 3
    assert _ops(fp32).count("Gemm") == 3  # the input model is not modified
    onnx.checker.check_model(rewritten, full_check=True)
    names = [n.name for n in rewritten.graph.node]
    assert len(set(names)) == len(names)
    for batch in (1, 5):
        x = _x("mlp", batch)
        np.testing.assert_allclose(_run(rewritten, x), _run(fp32, x), rtol=1e-5, atol=1e-5)


def _gemm_model(
    trans_a: int, trans_b: int, alpha: float, beta: float, c: str
) -> tuple[onnx.ModelProto, dict[str, np.ndarray], np.ndarray]:
    """One Gemm with B an initializer; C an initializer, a graph input, or absent."""
    rng = np.random.default_rng(0)
    m, k, n = 3, 6, 5
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    cv = rng.standard_normal((n,)).astype(np.float32)
    inits, inputs = [numpy_helper.from_array(b, "B")], [("A", a)]
    if c == "init":
        inits.append(numpy_helper.from_array(cv, "C"))
    elif c == "input":
        inputs.append(("C", cv))
    node = helper.make_node(
        "Gemm",
        ["A", "B", "C"] if c else ["A", "B"],
        ["Y"],
        "gemm",
        alpha=alpha,
        beta=beta,
        transA=trans_a,
        transB=trans_b,
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(nm, TensorProto.FLOAT, list(v.shape)) for nm, v in inputs],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    ref = alpha * (a.T if trans_a else a) @ (b.T if trans_b else b) + (beta * cv if c else 0.0)
    return model, dict(inputs), ref


@pytest.mark.parametrize(
    "trans_a,trans_b,alpha,beta,c",
    [
        (0, 1, 1.0, 1.0, "init"),
        (0, 0, 1.0, 1.0, ""),
        (1, 1, 0.5, 2.0, "init"),
        (1, 0, 1.5, -0.5, "input"),
        (0, 1, 2.0, 0.0, "init"),
    ],
)
def test_gemm_to_matmul_handles_attributes(trans_a, trans_b, alpha, beta, c):
    model, feeds, ref = _gemm_model(trans_a, trans_b, alpha, beta, c)
    rewritten, count = gemm_to_matmul(model)
    assert count == 1 and "Gemm" not in _ops(rewritten)
    onnx.checker.check_model(rewritten, full_check=True)
    sess = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, feeds)[0], ref, rtol=1e-5, atol=1e-5)


def test_gemm_to_matmul_shared_weight_and_dropped_bias():
    """Two Gemms on one transposed weight share one rewritten copy; beta=0 drops C."""
    rng = np.random.default_rng(0)
    w, c = rng.standard_normal((4, 4)).astype(np.float32), np.ones(4, np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "W", "C"], ["h"], "g1", transB=1, beta=0.0),
        helper.make_node("Gemm", ["h", "W"], ["y"], "g2", transB=1),
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 4]) for n in ("x", "y")]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(c, "C")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", io[:1], io[1:], inits),
        opset_imports=[helper.make_opsetid("", 20)],
    )
    rewritten, count = gemm_to_matmul(model)
    assert count == 2 and _ops(rewritten) == ["MatMul", "MatMul"]
    assert [t.name for t in rewritten.graph.initializer] == ["W_kn"]
    onnx.checker.check_model(rewritten, full_check=True)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(rewritten, x), x @ w.T @ w.T, rtol=1e-5, atol=1e-5)


def test_gemm_with_activation_b_is_left_alone():
    model, _, _ = _gemm_model(0, 1, 1.0, 1.0, "init")
    b = model.graph.initializer[0]
    model.graph.input.append(helper.make_tensor_value_info("B2", TensorProto.FLOAT, list(b.dims)))
    model.graph.node[0].input[1] = "B2"
    rewritten, count = gemm_to_matmul(model)
    assert count == 0 and _ops(rewritten) == ["Gemm"]


# ---------------------------------------------------------------- quantize_int4


def _bits_expected(model: Path, fmt: str, block: int, symmetric: bool) -> float:
    """bits/weight computed independently from the FP32 weights' shapes (every MatMul weight
    quantized): packed int4 (+ MatMulNBits' K padding), fp32 scales, zero points, and the other
    float parameters at 32 bits."""
    fp32 = onnx.load(str(model))
    weights = {n.input[1] for n in fp32.graph.node if n.op_type == "MatMul"}
    bits = params = 0
    for t in fp32.graph.initializer:
        if not t.dims:
            continue
        count = int(np.prod(t.dims))
        params += count
        if t.name not in weights:
            bits += 32 * count
            continue
        k, n = t.dims
        blocks = -(-k // block)
        if fmt == "matmulnbits":
            nbytes = (
                n * blocks * (block // 2)
                + 4 * n * blocks
                + (0 if symmetric else n * -(-blocks // 2))
            )
        else:
            nbytes = -(-k * n // 2) + 4 * n * blocks + (0 if symmetric else -(-n * blocks // 2))
        bits += 8 * nbytes
    return bits / params


@pytest.mark.parametrize("fmt", ["matmulnbits", "qdq"])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("name", ["mlp", "block"])
def test_quantize_int4_settings(models, tmp_path, name, fmt, symmetric):
    ref = _run(models[name], _x(name))
    bits = {}
    for block in (32, 64, 128):
        out = tmp_path / f"{block}.onnx"
        stats = quantize_int4(models[name], out, block_size=block, symmetric=symmetric, fmt=fmt)
        assert isinstance(stats, Int4Stats)
        assert (stats.fmt, stats.block_size, stats.symmetric) == (fmt, block, symmetric)
        assert stats.accuracy_level == (4 if fmt == "matmulnbits" else None)
        assert stats.gemms_rewritten == (3 if name == "mlp" else 0)
        assert stats.fp32_bytes == models[name].stat().st_size
        assert stats.int4_bytes == out.stat().st_size < stats.fp32_bytes / 2
        assert 4.0 < stats.bits_per_weight < 32.0
        bits[block] = stats.bits_per_weight
        json.dumps(stats.to_dict())

        # fidelity on the optimized session (graph fusions included) and the plain one
        y = _run(out, _x(name))
        assert y.shape == ref.shape
        assert 1e-3 < _rel(y, ref) < ERR_BOUND[name], _rel(y, ref)
        assert _rel(_run(out, _x(name), optimize=False), y) < 1e-2
        assert _run(out, _x(name, 1)).shape[0] == 1  # the batch axis stays dynamic

        q = onnx.load(str(out))
        onnx.checker.check_model(q)
        kinds = _ops(q)
        assert "Gemm" not in kinds
        if fmt == "matmulnbits":
            nodes = [n for n in q.graph.node if n.op_type == "MatMulNBits"]
            for n in nodes:
                att = {a.name: helper.get_attribute_value(a) for a in n.attribute}
                assert (att["bits"], att["block_size"], att["accuracy_level"]) == (4, block, 4)
        else:
            onnx.checker.check_model(q, full_check=True)
            opset = next(o.version for o in q.opset_import if o.domain == "")
            assert opset >= 21 and "MatMulNBits" not in kinds
            nodes = [n for n in q.graph.node if n.op_type == "DequantizeLinear"]
            inits = {t.name: t for t in q.graph.initializer}
            for n in nodes:
                att = {a.name: helper.get_attribute_value(a) for a in n.attribute}
                assert (att["axis"], att["block_size"]) == (0, block)
                want = TensorProto.INT4 if symmetric else TensorProto.UINT4
                assert inits[n.input[0]].data_type == want
                assert (len(n.input) == 3) == (not symmetric)  # zero points only if asymmetric
        assert len(nodes) == stats.matmuls_quantized

        if name == "block":  # every K is a multiple of 64: exact accounting check
            assert stats.matmuls_quantized == 6 and stats.weight_params_int4 == 6 * 64 * 256 // 2
            want_bits = _bits_expected(models[name], fmt, block, symmetric)
            assert stats.bits_per_weight == pytest.approx(want_bits, abs=1e-3)
            # the two attention MatMuls (activation x activation) are reported, not quantized
            assert sum("activation" in s["reason"] for s in stats.skipped) == 2

    # bigger blocks -> fewer scales; but MatMulNBits pads K to whole blocks (K=64 at block 128)
    if fmt == "qdq":
        assert bits[32] > bits[64] > bits[128]
    elif name == "block":
        assert bits[32] > bits[64] < bits[128]


def test_gemm_exported_linear_layers_get_quantized(models, tmp_path):
    """The trap in FINDINGS: onnxruntime's tool alone quantizes nothing in a Gemm model."""
    from onnxruntime.quantization import matmul_nbits_quantizer as mnq

    alone = mnq.MatMulNBitsQuantizer(onnx.load(str(models["mlp"])), block_size=32)
    alone.process()
    assert "MatMulNBits" not in _ops(alone.model.model)

    stats = quantize_int4(models["mlp"], tmp_path / "q.onnx", block_size=32)
    assert stats.gemms_rewritten == 3 and stats.matmuls_quantized == 3 and stats.skipped == []
    assert stats.weight_params_int4 == 64 * 320 + 320 * 14 + 14 * 64


def test_odd_widths(models, tmp_path):
    """K=14 and K=320 are not multiples of the block: onnxruntime pads K (MatMulNBits) or uses a
    short last block (QDQ). At block 128 the padded 14-wide layer would outweigh FP32: kept."""
    for fmt in ("matmulnbits", "qdq"):
        stats = quantize_int4(models["mlp"], tmp_path / f"{fmt}64.onnx", block_size=64, fmt=fmt)
        assert stats.matmuls_quantized == 3
    stats = quantize_int4(models["mlp"], tmp_path / "q.onnx", block_size=128)
    assert stats.matmuls_quantized == 2
    [skip] = stats.skipped
    assert "K=14" in skip["reason"] and "not smaller" in skip["reason"]
    assert stats.weight_params_fp32 == 14 * 64 + 320 + 14 + 64  # its weight + the biases
    stats = quantize_int4(models["mlp"], tmp_path / "q.onnx", block_size=128, fmt="qdq")
    assert stats.matmuls_quantized == 3 and stats.skipped == []


def test_conv_only_model_stays_fp32(models, tmp_path):
    out = tmp_path / "conv.onnx"
    for fmt in ("matmulnbits", "qdq"):
        stats = quantize_int4(models["conv"], out, fmt=fmt)
        assert stats.matmuls_quantized == 0 and stats.weight_params_int4 == 0
        assert stats.weight_params_fp32 == 16 * 8 * 3 + 16 + 4 * 16 * 3 + 4
        assert stats.bits_per_weight == 32.0
        assert [s["op"] for s in stats.skipped] == ["Conv", "Conv"]
        assert all("no low-bit Conv kernel" in s["reason"] for s in stats.skipped)
        x = _x("conv")
        np.testing.assert_allclose(_run(out, x), _run(models["conv"], x), rtol=1e-6, atol=1e-6)


def test_nodes_to_exclude(models, tmp_path):
    fp32 = onnx.load(str(models["block"]))
    first = next(n.name for n in fp32.graph.node if n.op_type == "MatMul")
    out = tmp_path / "q.onnx"
    stats = quantize_int4(models["block"], out, nodes_to_exclude=[first])
    assert stats.matmuls_quantized == 5
    assert {"node": first, "op": "MatMul", "reason": "in nodes_to_exclude"} in stats.skipped
    assert stats.weight_params_fp32 == 704 + 64 * 64
    assert first in {n.name for n in onnx.load(str(out)).graph.node if n.op_type == "MatMul"}


def test_shared_weight_qdq_is_valid(tmp_path):
    """Two MatMuls on one weight: the QDQ tool writes two identical DequantizeLinear nodes."""
    w = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"], "mm1"),
            helper.make_node("MatMul", ["h", "W"], ["y"], "mm2"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 64])],
        [numpy_helper.from_array(w, "W")],
    )
    src = tmp_path / "shared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(src))
    x = np.random.default_rng(1).standard_normal((2, 64)).astype(np.float32)
    for fmt in ("qdq", "matmulnbits"):
        stats = quantize_int4(src, tmp_path / f"{fmt}.onnx", fmt=fmt)
        assert stats.matmuls_quantized == 2 and stats.weight_params_int4 == 64 * 64
        assert _rel(_run(tmp_path / f"{fmt}.onnx", x), x @ w @ w) < 0.2


def test_bad_input(models, tmp_path):
    with pytest.raises(BadInputError, match="format"):
        quantize_int4(models["mlp"], tmp_path / "q.onnx", fmt="int3")
    with pytest.raises(BadInputError, match="block_size"):
        quantize_int4(models["mlp"], tmp_path / "q.onnx", block_size=48)
    with pytest.raises(BadInputError, match="accuracy_level"):
        quantize_int4(models["mlp"], tmp_path / "q.onnx", accuracy_level=7)
    with pytest.raises(ModelLoadError):
        quantize_int4(tmp_path / "missing.onnx", tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()


def test_root_logger_left_alone(models, tmp_path):
    """Importing onnxruntime's int4 module runs logging.basicConfig(level=INFO); undone (fresh
    process, so the import really happens inside quantize_int4)."""
    code = (
        "import logging, sys; from edgekit.quantize.int4 import quantize_int4; "
        "quantize_int4(sys.argv[1], sys.argv[2]); "
        "root = logging.getLogger(); print(root.level, len(root.handlers))"
    )
    args = [sys.executable, "-c", code, str(models["mlp"]), str(tmp_path / "q.onnx")]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(logging.WARNING), "0"]
    assert done.stderr == ""


def test_the_cli_says_int4_is_weight_only(cli, humanoid_artifact, tmp_path):
    r = cli("quantize", humanoid_artifact, "--precision", "int4", "--calib", "synthetic",
            "--latency-ticks", "0", "--out", tmp_path / "q")  # fmt: skip
    assert r.code == 0, r.err
    first = r.out.splitlines()[0]
    assert "None" not in first and "no activation calibration" in first, first
    assert "per block of 32" in first and "held-out ticks of synthetic" in first
