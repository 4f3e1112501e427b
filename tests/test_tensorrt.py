"""TensorRT export up to the engine: TensorRT-ready ONNX, op-support check, build plan.

The engine build needs `tensorrt` and a CUDA GPU; that test runs only where both exist.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.artifacts import load_artifact
from edgekit.export.trt_ops import check


@pytest.fixture(scope="module")
def fp16_dp(tmp_path_factory):
    from edgekit.export import export_tensorrt
    from edgekit.loader import load

    out = tmp_path_factory.mktemp("trt") / "dp"
    export_tensorrt(load("zoo:diffusion-policy:tiny"), out, target="jetson-orin-nx")
    return out


def test_fp16_onnx_keeps_fragile_ops_fp32_and_io_fp32(fp16_dp):
    art = load_artifact(fp16_dp)
    assert art.manifest.format == "tensorrt"
    rep = art.manifest.checks["tensorrt"]
    assert rep["precision"] == "fp16" and rep["built"] is False
    model = onnx.load(str(art.file("denoiser")))
    onnx.checker.check_model(model)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.value_info}
    for node in model.graph.node:
        if node.op_type == "InstanceNormalization":  # kept in FP32
            assert types.get(node.output[0], TensorProto.FLOAT) == TensorProto.FLOAT
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    fp16_weights = [
        i for i in model.graph.initializer
        if i.data_type == TensorProto.FLOAT16 and i.name in {n.input[1] for n in convs}
    ]  # fmt: skip
    assert fp16_weights  # the convolutions run in FP16
    assert all(i.type.tensor_type.elem_type == TensorProto.FLOAT for i in model.graph.input)
    assert all(d.dim_value > 0 for i in model.graph.input for d in i.type.tensor_type.shape.dim)
    assert "InstanceNormalization" in rep["networks"]["denoiser"]["fp32_kept_ops"]
    assert rep["fidelity"]["checked"] and rep["fidelity"]["worst_rel_l2"] < 0.02


def test_build_plan_is_exact_and_shipped(fp16_dp):
    rep = load_artifact(fp16_dp).manifest.checks["tensorrt"]
    lines = rep["plan"]["trtexec"]
    assert lines[0].startswith("trtexec --onnx=encoder.trt.onnx --saveEngine=encoder.engine")
    assert all("--stronglyTyped" in x and "--timingCacheFile=timing.cache" in x for x in lines)
    assert "--build" in rep["plan"]["edgekit"] and "--precision fp16" in rep["plan"]["edgekit"]
    script = (fp16_dp / "build_engines.sh").read_text()
    assert all(x.replace("trtexec ", '"$TRTEXEC" ', 1) in script for x in lines)


def test_int8_needs_explicit_symmetric_qdq(cli, tmp_path):
    r = cli("export", "zoo:humanoid:tiny", "--format", "tensorrt", "--precision", "int8",
            "--out", tmp_path / "t")  # fmt: skip
    assert r.code == 2 and "explicit symmetric Q/DQ" in r.err and not (tmp_path / "t").exists()


def test_int8_from_a_jetson_quantized_artifact(cli, tmp_path):
    q = tmp_path / "q"
    r = cli("quantize", "zoo:humanoid:tiny", "--target", "jetson-orin-nx", "--calib",
            "calib_data/humanoid-tiny.npz", "--out", q, "--latency-ticks", "0")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("export", q, "--format", "tensorrt", "--precision", "int8", "--out", tmp_path / "t")
    assert r.code == 0, r.err
    art = load_artifact(tmp_path / "t")
    rep = art.manifest.checks["tensorrt"]
    assert rep["networks"]["policy"]["explicit_qdq"] is True
    assert rep["op_check"]["passed"] is True
    # strongly typed: the float remainder and the Q/DQ scales are FP16, biases float (TensorRT's
    # DequantizeLinear takes no int32), the graph's inputs and outputs FP32
    assert rep["networks"]["policy"]["float_remainder"] == "fp16"
    model = onnx.load(str(art.file("policy")))
    inits = {i.name: i for i in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(inits[n.input[1]].data_type == TensorProto.FLOAT16 for n in qdq)
    assert not any(
        n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.INT32 for n in qdq
    )
    gemms = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul", "Conv")]
    biases = [inits[n.input[2]] for n in gemms if len(n.input) > 2 and n.input[2] in inits]
    assert biases and all(b.data_type == TensorProto.FLOAT16 for b in biases)
    assert all(i.type.tensor_type.elem_type == TensorProto.FLOAT for i in model.graph.input)
    # ...and its fidelity, INT8 with the FP16 remainder, measured on onnxruntime before the device
    fid = rep["fidelity"]
    assert fid["checked"] and 0 < fid["worst_rel_l2"] < 0.1, fid


def test_cpu_u8_qdq_is_refused_with_the_offending_nodes(cli, tmp_path):
    q = tmp_path / "q"
    assert cli("quantize", "zoo:humanoid:tiny", "--calib", "calib_data/humanoid-tiny.npz",
               "--out", q, "--latency-ticks", "0").code == 0  # fmt: skip
    r = cli("export", q, "--format", "tensorrt", "--precision", "int8", "--out", tmp_path / "t")
    assert r.code == 2 and "cannot parse" in r.err
    assert "zero point must be 0" in r.err or "uint8 quantization" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "t").exists()


def _graph(nodes, inits=(), opset=17, domain_ops=()):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        list(inits),
    )
    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domain_ops)]
    return helper.make_model(g, opset_imports=imports)


def test_op_check_names_every_unsupported_node():
    nodes = [
        helper.make_node("MaxPool", ["x"], ["a"], name="pool1d", kernel_shape=[2]),
        helper.make_node("Resize", ["a", "", "s"], ["b"], name="cubic", mode="cubic"),
        helper.make_node("Unique", ["b"], ["c"], name="uniq"),
        helper.make_node("FusedMatMul", ["c", "c"], ["y"], name="contrib", domain="com.microsoft"),
    ]
    scales = numpy_helper.from_array(np.ones(4, np.float32), "s")
    found = {o.node: o.why for o in check(_graph(nodes, [scales], domain_ops=["com.microsoft"]))}
    assert "2D or 3D" in found["pool1d"]
    assert "cubic" in found["cubic"]
    assert "not supported" in found["uniq"]
    assert "custom-domain" in found["contrib"]


def test_op_check_passes_every_zoo_export(tmp_path):
    from edgekit.export import export_onnx
    from edgekit.loader import load
    from edgekit.zoo import ZOO

    for kind in ZOO.names():
        res = export_onnx(load(f"zoo:{kind}:tiny"), tmp_path / kind, check_parity=False)
        for e in res.manifest.files.values():
            assert check(onnx.load(str(res.out / e["file"])), "10.3") == [], kind


def test_build_script_finds_jetpacks_trtexec(fp16_dp, tmp_path):
    import os
    import subprocess

    script = fp16_dp / "build_engines.sh"
    assert "/usr/src/tensorrt/bin/trtexec" in script.read_text()
    # run it with a stand-in trtexec that records its arguments: the plan's lines, in order
    log = tmp_path / "calls"
    fake = tmp_path / "trtexec"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    r = subprocess.run(["sh", str(script)], env={**os.environ, "TRTEXEC": str(fake)},
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    plan = load_artifact(fp16_dp).manifest.checks["tensorrt"]["plan"]["trtexec"]
    assert log.read_text().splitlines() == [p.removeprefix("trtexec ") for p in plan]


def test_a_dynamic_input_without_a_profile_is_refused():
    from edgekit.errors import BadInputError
    from edgekit.export.tensorrt import _refuse_unprofiled

    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(g)
    with pytest.raises(BadInputError, match=r"input 'x' has dynamic dimension\(s\) batch and no"):
        _refuse_unprofiled(model, {}, "m.onnx: network 'policy'")
    _refuse_unprofiled(model, {"x": {"min": [1, 4], "opt": [1, 4], "max": [8, 4]}}, "m")


def _cuda_gpu() -> bool:
    from edgekit.errors import BackendMissingError

    try:
        from edgekit.runtimes.cuda import gpu

        gpu()
        return True
    except BackendMissingError:
        return False


def test_build_without_tensorrt_or_gpu_is_exit_3(cli, tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is importable here")
    r = cli("export", "zoo:humanoid:tiny", "--format", "tensorrt", "--build",
            "--out", tmp_path / "t")  # fmt: skip
    assert r.code == 3 and "pip install 'edgekit[tensorrt]'" in r.err


@pytest.mark.gpu
def test_engine_build_where_tensorrt_and_a_gpu_exist(tmp_path):
    trt = pytest.importorskip("tensorrt")
    if not _cuda_gpu():
        pytest.skip("no CUDA GPU")
    from edgekit.export import export_tensorrt
    from edgekit.loader import load

    res = export_tensorrt(
        load("zoo:humanoid:tiny"), tmp_path / "e", target="jetson-orin-nx", build=True
    )
    assert res.report["built"] and res.report["tensorrt_version"] == trt.__version__
    engine = tmp_path / "e" / res.report["engines"]["policy"]["file"]
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    assert runtime.deserialize_cuda_engine(engine.read_bytes()) is not None


def test_bench_tensorrt_runtime_needs_built_engines(cli, fp16_dp):
    r = cli("bench", fp16_dp, "--target", "jetson-orin-nx", "--runtime", "tensorrt")
    assert r.code in (2, 3)  # 3 where tensorrt is not installed, 2: no engines in the folder
    assert "tensorrt" in r.err


def test_tensorrt_artifact_estimates_at_its_precision(cli, fp16_dp, tmp_path):
    import json

    r = cli("bench", fp16_dp, "--target", "jetson-orin-nano", "--json", tmp_path / "e.json")
    assert r.code in (0, 1), r.err
    rep = json.loads((tmp_path / "e.json").read_text())
    assert rep["measurement"]["kind"] == "estimated" and rep["estimate"]["precision"] == "fp16"


@pytest.mark.gpu
def test_bench_runs_built_engines_where_tensorrt_and_a_gpu_exist(cli, tmp_path):
    pytest.importorskip("tensorrt")
    if not _cuda_gpu():
        pytest.skip("no CUDA GPU")
    out = tmp_path / "e"
    r = cli("export", "zoo:humanoid:tiny", "--format", "tensorrt", "--build", "--out", out)
    assert r.code == 0, r.err
    r = cli("bench", out, "--target", "jetson-orin-nx", "--runtime", "tensorrt", "--ticks", "5",
            "--budget-ms", "60000")  # fmt: skip
    assert r.code == 0, r.err
    assert "verdict: PASS" in r.out


@pytest.mark.gpu
def test_policy_on_engines_matches_onnxruntime_where_a_gpu_exists(tmp_path, humanoid_artifact):
    import edgekit

    pytest.importorskip("tensorrt")
    if not _cuda_gpu():
        pytest.skip("no CUDA GPU")
    from edgekit.export import export_tensorrt
    from edgekit.loader import load

    out = tmp_path / "e"
    export_tensorrt(load("zoo:humanoid:tiny"), out, target="jetson-orin-nx", build=True)
    trt_policy = edgekit.Policy.load(out, runtime="tensorrt", target="jetson-orin-nx")
    ort_policy = edgekit.Policy.load(humanoid_artifact, runtime="ort")
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs = ort_policy.program.sample_observation(rng)
        want, got = ort_policy.act(obs), trt_policy.act(obs)
        for k, v in want.items():
            err = np.linalg.norm(got[k] - v) / (np.linalg.norm(v) + 1e-12)
            assert err < 0.02, (k, err)  # FP16 engine vs FP32 onnxruntime
    assert trt_policy.report()["runtime"] == "tensorrt"
