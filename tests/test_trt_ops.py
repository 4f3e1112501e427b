"""The TensorRT op-support check, keyed by the TensorRT the target's JetPack ships.

Small handmade graphs: each documented parser restriction is flagged, and its valid form passes.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.errors import BadInputError
from edgekit.export.trt_ops import check, source


def _model(nodes, inits=(), opset=17, extra_inputs=()):
    g = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8]),
            *(helper.make_tensor_value_info(n, t, s) for n, t, s in extra_inputs),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in inits],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _found(model, tensorrt="10.3"):
    return {o.node: o.why for o in check(model, tensorrt)}


I64 = TensorProto.INT64


def test_topk_sorted_and_k_limit():
    nodes = [
        helper.make_node("TopK", ["x", "k_ok"], ["a", "ai"], name="ok"),
        helper.make_node("TopK", ["x", "k_big"], ["b", "bi"], name="big"),
        helper.make_node("TopK", ["x", "k_ok"], ["c", "ci"], name="unsorted", sorted=0),
        helper.make_node("TopK", ["x", "k_in"], ["y", "yi"], name="dynamic"),  # dynamic K is fine
    ]
    inits = [("k_ok", np.array([5], np.int64)), ("k_big", np.array([3840], np.int64))]
    found = _found(_model(nodes, inits, extra_inputs=[("k_in", I64, [1])]))
    assert "less than 3840" in found["big"] and "3840" in found["big"]
    assert "sorted must be 1" in found["unsorted"]
    assert "ok" not in found and "dynamic" not in found


def test_cumsum_axis_initializer_then_build_time_constant():
    nodes = [
        helper.make_node("CumSum", ["x", "ax"], ["a"], name="init"),
        helper.make_node("Identity", ["ax"], ["ax2"]),
        helper.make_node("CumSum", ["a", "ax2"], ["b"], name="folded"),
        helper.make_node("CumSum", ["b", "ax_in"], ["y"], name="runtime"),
    ]
    m = _model(nodes, [("ax", np.array(1, np.int64))], extra_inputs=[("ax_in", I64, [])])
    old = _found(m, "10.3")
    assert "init" not in old
    assert "must be an initializer" in old["folded"] and "10.8" in old["folded"]
    assert "must be an initializer" in old["runtime"]
    new = _found(m, "10.8")
    assert "init" not in new and "folded" not in new
    assert "build-time constant" in new["runtime"]


def test_reduce_axes_input_must_be_an_initializer():
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["a"], name="init"),
        helper.make_node("ReduceSum", ["a", "axes_in"], ["b"], name="runtime"),
        helper.make_node("ReduceMax", ["b"], ["y"], name="all_axes"),  # no axes input: fine
    ]
    m = _model(nodes, [("axes", np.array([1], np.int64))], 18, [("axes_in", I64, [1])])
    assert _found(m) == {"runtime": "axes must be an initializer"}


def test_resize_modes_policy_antialias_and_axes():
    scales = ("s", np.array([1, 1, 2, 2], np.float32))
    nodes = [
        helper.make_node("Resize", ["x", "", "s"], ["a"], name="ok", mode="linear",
                         coordinate_transformation_mode="align_corners"),
        helper.make_node("Resize", ["a", "", "s"], ["b"], name="cubic", mode="cubic"),
        helper.make_node("Resize", ["b", "", "s"], ["c"], name="crop",
                         coordinate_transformation_mode="tf_crop_and_resize"),
        helper.make_node("Resize", ["c", "", "s"], ["d"], name="policy",
                         keep_aspect_ratio_policy="not_larger"),
        helper.make_node("Resize", ["d", "", "s"], ["e"], name="aa", mode="linear", antialias=1),
        helper.make_node("Resize", ["e", "", "s_in"], ["f"], name="iota", axes=[0, 1, 2, 3]),
        helper.make_node("Resize", ["f", "", "s2_in"], ["y"], name="not_iota", axes=[2, 3]),
    ]  # fmt: skip
    extra = [("s_in", TensorProto.FLOAT, [4]), ("s2_in", TensorProto.FLOAT, [2])]
    found = _found(_model(nodes, [scales], 19, extra))
    assert "cubic" in found["cubic"]
    assert "tf_crop_and_resize" in found["crop"]
    assert "stretch only" in found["policy"]
    assert "antialias" in found["aa"]
    assert "axes must be 0..rank-1" in found["not_iota"]
    assert not {"ok", "iota"} & set(found)


def test_qdq_scale_constant_and_per_axis_only_on_weights():
    w = ("w", np.ones((4, 4, 3, 3), np.float32))
    s1 = ("s1", np.array(0.1, np.float32))
    s4 = ("s4", np.full(4, 0.1, np.float32))
    zp = ("zp", np.array(0, np.int8))
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s1", "zp"], ["xq"], name="act_q"),
        helper.make_node("DequantizeLinear", ["xq", "s1", "zp"], ["xd"], name="act_dq"),
        # weights per-axis, quantized in the graph: Q(W) folds to a constant
        helper.make_node("QuantizeLinear", ["w", "s4"], ["wq"], name="w_q", axis=0),
        helper.make_node("DequantizeLinear", ["wq", "s4"], ["wd"], name="w_dq", axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s4"], ["cq"], name="act_per_axis", axis=1),
        helper.make_node("DequantizeLinear", ["cq", "s_in"], ["y"], name="runtime_scale"),
    ]
    found = _found(_model(nodes, [w, s1, s4, zp], 13, [("s_in", TensorProto.FLOAT, [])]))
    assert "per-axis scale on an activation" in found["act_per_axis"]
    assert "build-time constant" in found["runtime_scale"]
    assert not {"act_q", "act_dq", "w_q", "w_dq"} & set(found)


def test_a_quantized_int32_bias_is_flagged():
    b = ("b_q", np.arange(4, dtype=np.int32))
    s4 = ("s4", np.full(4, 0.01, np.float32))
    w = ("w", np.ones((4, 4, 3, 3), np.float32))
    nodes = [
        helper.make_node("DequantizeLinear", ["b_q", "s4"], ["b"], name="bias_dq", axis=0),
        helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
    ]
    assert "keep biases float" in _found(_model(nodes, [b, s4, w], 13))["bias_dq"]


def test_group_normalization_21_needs_10_9():
    def gn(opset):
        node = helper.make_node("GroupNormalization", ["x", "g", "b"], ["y"], name="gn",
                                num_groups=2)  # fmt: skip
        n = 4 if opset >= 21 else 2  # scale/bias per channel from opset 21, per group before
        inits = [("g", np.ones(n, np.float32)), ("b", np.zeros(n, np.float32))]
        return _model([node], inits, opset)

    found = _found(gn(21), "10.3")
    assert found["gn"] == (
        "GroupNormalization (opset 21) needs TensorRT >= 10.9; this target's JetPack ships 10.3"
    )
    assert "outside 9 to 20" in found["(model)"]
    assert check(gn(21), "10.9") == []
    assert check(gn(18), "10.3") == []


def test_opset_range_follows_the_version():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], opset=21)
    [o] = check(m, "10.3")
    assert o.op_type == "opset" and "10.3" in o.why
    assert check(m, "10.9") == []
    m24 = _model([helper.make_node("Relu", ["x"], ["y"])], opset=24)
    assert check(m24, "10.13.3") and check(m24, "10.15") == []


def test_attention_and_later_ops_by_version():
    att = helper.make_node("Attention", ["x", "x", "x"], ["y"], name="att")
    m = _model([att], opset=23)
    for v in ("10.3", "10.13"):
        assert _found(m, v)["att"].startswith("Attention needs TensorRT >= 10.14")
    assert check(m, "10.14") == []
    rms = _model([helper.make_node("RMSNormalization", ["x", "s"], ["y"], name="rms")],
                 [("s", np.ones(8, np.float32))], 23)  # fmt: skip
    assert "10.15" in _found(rms, "10.14")["rms"] and check(rms, "10.15") == []
    swish = _model([helper.make_node("Swish", ["x"], ["y"], name="sw")], opset=24)
    assert "TensorRT >= 11.0" in _found(swish, "10.15")["sw"]
    win = _model([helper.make_node("HannWindow", ["n"], ["y"], name="w")], [("n", np.array(8))])
    assert "10.4" in _found(win, "10.3")["w"] and check(win, "10.4") == []


def test_scatternd_reduction_attribute_by_version():
    def sc(**kw):
        node = helper.make_node("ScatterND", ["x", "i", "u"], ["y"], name="sc", **kw)
        inits = [("i", np.zeros((1, 1), np.int64)), ("u", np.zeros((1, 4, 8, 8), np.float32))]
        return _model([node], inits, 18)

    assert "10.9" in _found(sc(reduction="none"), "10.3")["sc"]
    assert check(sc(reduction="none"), "10.9") == []
    assert check(sc(), "10.3") == []
    for v in ("10.3", "10.15"):
        assert "'add' unsupported" in _found(sc(reduction="add"), v)["sc"]


@pytest.mark.parametrize("bad", ["11.0", "9.3", "8.6.1", "ten", "", "10"])
def test_unknown_tensorrt_version_is_refused(bad):
    m = _model([helper.make_node("Relu", ["x"], ["y"])])
    with pytest.raises(BadInputError, match="TensorRT"):
        check(m, bad)
    with pytest.raises(BadInputError):
        source(bad)


def test_every_arrival_has_its_table():
    from edgekit.export.trt_ops import LATER, TABLES

    assert all(a.since in TABLES for a in LATER if a.since[0] == 10)
    for v, t in TABLES.items():  # what a table says is unsupported follows the arrivals
        assert ("Attention" in t.unsupported) == (v < (10, 14))
        assert "Swish" in t.unsupported and "Unique" in t.unsupported


def test_source_names_the_table_used():
    assert "10.0 table for 10.3 (opset 9 to 20)" in source("10.3")
    assert "10.13 table for 10.13 (opset 9 to 23)" in source("10.13.3")
    assert "10.15 table for 10.16" in source("10.16")


def test_jetson_targets_carry_their_jetpack_tensorrt():
    from edgekit.targets import get_target

    names = ("jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "jetson-thor")
    versions = {n: get_target(n).tensorrt for n in names}
    assert versions == {"jetson-orin-nano": "10.3", "jetson-orin-nx": "10.3",
                        "jetson-agx-orin": "10.3", "jetson-thor": "10.13"}  # fmt: skip
    assert get_target("cpu").tensorrt is None
    assert all(source(v) for v in versions.values())
