"""The roofline estimate: op costs on hand-built graphs, machines, and labelled reports."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.estimate.costs import graph_costs
from edgekit.estimate.host import target_machine
from edgekit.estimate.machine import Machine
from edgekit.estimate.roofline import op_time
from edgekit.targets import get_target


def _matmul_graph(quantized: bool):
    w = np.ones((512, 256), np.float32)
    nodes, inits = [], []
    if quantized:
        inits += [
            numpy_helper.from_array(np.ones((512, 256), np.int8), "wq"),
            numpy_helper.from_array(np.array(0.1, np.float32), "s"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
    nodes.append(helper.make_node("Relu", ["y"], ["z"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 256])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_matmul_flops_and_bytes_at_each_precision():
    costs = {c.op_type: c for c in graph_costs(_matmul_graph(False), {"batch": 4})}
    mm = costs["MatMul"]
    assert mm.flops == 2 * 4 * 512 * 256
    assert mm.weight_bytes == 512 * 256 * 4
    assert mm.bytes == mm.weight_bytes + (4 * 512 + 4 * 256) * 4
    assert costs["Relu"].flops == 4 * 256 and costs["Relu"].weight_bytes == 0
    half = {c.op_type: c for c in graph_costs(_matmul_graph(False), {"batch": 4}, act_bytes=2)}
    assert half["MatMul"].bytes == mm.weight_bytes + (4 * 512 + 4 * 256) * 2


def test_qdq_weights_count_at_one_byte_and_run_as_int8():
    costs = {c.op_type: c for c in graph_costs(_matmul_graph(True), {"batch": 1})}
    assert costs["DequantizeLinear"].fused
    assert costs["MatMul"].weight_bytes == 512 * 256  # int8 weights, read once
    assert costs["MatMul"].int8


def test_op_time_is_the_roofline_bound_plus_dispatch():
    m = Machine("t", {"fp32": 1e12, "int8": 4e12}, 1e11, {}, 1e-6, 0.0, 0.0, {}, 0.0, 0.5, 1.0, "")
    mm = next(c for c in graph_costs(_matmul_graph(False), {"batch": 1}) if c.op_type == "MatMul")
    t, bound = op_time(mm, m, "fp32")
    assert bound == "memory"  # batch 1: weights dominate
    assert t == pytest.approx(mm.bytes / 1e11 + 1e-6)
    big = next(
        c for c in graph_costs(_matmul_graph(False), {"batch": 4096}) if c.op_type == "MatMul"
    )
    t, bound = op_time(big, m, "fp32")
    assert bound == "compute" and t == pytest.approx(big.flops / (1e12 * 0.5) + 1e-6)


def test_target_machines_come_from_published_figures():
    nx = target_machine(get_target("jetson-orin-nx"))
    assert nx.peak["fp16"] == 15e12 and nx.bandwidth == 102.4e9
    qc = target_machine(get_target("qcs6490"))
    assert qc.peak["int8"] == 12e12 and "fp16" not in qc.peak
    assert "data sheets" in nx.source and "shared/" not in nx.source


def test_estimates_scale_with_the_loop_program(cli, tmp_path):
    """Four DDIM steps cost less than sixteen; the estimate counts every call of the tick."""
    import json

    out = {}
    for steps in (4, 16):
        path = tmp_path / f"e{steps}.json"
        r = cli(
            "bench", "zoo:diffusion-policy:tiny", "--target", "jetson-orin-nano",
            "--loop", f"num_inference_steps={steps}", "--json", path,
        )  # fmt: skip
        assert r.code in (0, 1), r.err
        out[steps] = json.loads(path.read_text())["estimate"]
    calls = {c["network"]: c["calls"] for c in out[16]["calls"]}
    assert calls == {"encoder": 1, "denoiser": 16}
    assert out[4]["network_ms"] < out[16]["network_ms"]
    per_call = next(c["ms_per_call"] for c in out[16]["calls"] if c["network"] == "denoiser")
    enc = next(c["ms_per_call"] for c in out[16]["calls"] if c["network"] == "encoder")
    assert out[16]["network_ms"] == pytest.approx(enc + 16 * per_call)


def test_fp16_on_an_int8_only_htp_is_refused(cli):
    r = cli("bench", "zoo:humanoid:tiny", "--target", "qcs6490", "--precision", "fp16")
    assert r.code == 2 and "runs int8, int16, not fp16" in r.err


def test_host_estimate_next_to_the_host_measurement(humanoid_artifact):
    """The check the benchmark makes, in small: estimate the host from its own measured limits
    and measure the same tick. Speed is not asserted (tests never time); the plumbing is."""
    from edgekit.estimate import estimate_tick, host_machine
    from edgekit.loader import load
    from edgekit.loop.timing import time_ticks
    from edgekit.models import build_program
    from edgekit.runtimes import OrtRuntime

    src = load(str(humanoid_artifact))
    host = host_machine()
    assert host.source.startswith("measured on this host")
    assert host.peak["fp32"] > 0 and host.peak["int8"] > 0 and host.bandwidth > 0
    assert set(host.kernel_bandwidth) >= {"Conv", "MatMul"} and "Softplus" in host.kernel_curves
    est = estimate_tick(src.files, build_program(src.spec.program), host, "fp32", 4.0)
    measured = time_ticks(build_program(src.spec.program), OrtRuntime(src.files, 1), 5, 1)
    assert est.tick_ms > 0 and np.isfinite(est.tick_ms) and measured.tick_ns.min() > 0
    assert [c.network for c in est.calls] == ["policy"] and est.calls[0].ops > 10
    assert est.to_dict()["kind"] == "estimated"
