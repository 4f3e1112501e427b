"""Qualcomm HTP path: QNN-flavoured QDQ quantization, an HTP runtime, EPContext binaries.

Everything goes through onnxruntime's QNN plugin EP (``onnxruntime-qnn``, extra ``edgekit[qnn]``).
On x86 its ``libQnnHtp.so`` is Qualcomm's HTP *simulator*: outputs are what the HTP kernels
compute, but a call's time is simulation cost on this CPU, never device latency. Measured with
onnxruntime 1.32 + onnxruntime-qnn 2.7 (QNN 2.51):

* Placement: ``session.record_ep_graph_assignment_info=1`` then
  ``get_provider_graph_assignment_info()`` lists each partition (EP + node names/op types, after
  function inlining: Mish -> Softplus/Tanh/Mul). No log parsing. The graph-input Q and
  graph-output DQ (some inserted by the EP itself) run on CPU by design
  (``offload_graph_io_quantization``); they are reported apart from real fallbacks.
* ``htp_arch`` below 68 is silently ignored (the binary is v68 code), so v66 (QRB5165) is
  refused. When ``soc_model`` and ``htp_arch`` disagree the SoC wins; the QNN prepare library
  names the SoC ids below back (``soc_type=QCS6490/QCS8550/SM8650``).
* Per-channel (int8) weights send LayerNormalization to CPU; float (unquantized) ops run in fp16
  on v73/v75 but fall back to CPU on v68.
* The HTP can disagree with the same QDQ model on CPU: GroupNorm whose beta is all zero followed
  by a ReLU folded into the quantization range gave rel-L2 ~2 (keeping activations explicit
  fixes it, hence ``keep_removable_activations``); the zoo diffusion-policy denoiser at A16W8
  is still off (Mul inside Mish). ``htp_vs_cpu`` measures this per model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BadInputError
from edgekit.loop import Arrays
from edgekit.quantize.int8 import quiet, unshare_initializers
from edgekit.runtimes.htp import (
    HtpRuntime,
)


def qnn_quantize(
    fp32_path: Path,
    out_path: Path,
    calib_feeds: list[Arrays],
    activation_bits: int = 8,
    per_channel: bool = False,
    on_batch: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Write a QDQ model for QNN HTP: A8W8 or A16W8, weights uint8 per-tensor or int8
    per-channel. ``calib_feeds``: feed dicts (input name -> array, batch dim included);
    ``on_batch()`` is called for each one calibration runs (progress).""
    Dynamic input dims are fixed to the calibration shapes (HTP needs static shapes)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import (
        get_qnn_qdq_config,
        qnn_preprocess_model,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if activation_bits not in (8, 16):
        raise BadInputError(f"activation_bits={activation_bits}: QNN HTP takes 8 or 16")
    if not calib_feeds:  # never fall back to random data quietly
        raise BadInputError(f"{fp32_path}: no calibration samples given; pass real feeds")
    try:
        model = onnx.load(str(fp32_path))
    except Exception as e:
        raise BadInputError(f"{fp32_path}: cannot load ONNX model ({e})") from None
    fixed = _fix_static_shapes(model, calib_feeds, fp32_path)
    act = QuantType.QUInt16 if activation_bits == 16 else QuantType.QUInt8
    wt = QuantType.QInt8 if per_channel else QuantType.QUInt8

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib_feeds)

        def get_next(self) -> Arrays | None:
            feed = next(self._it, None)
            if feed is not None and on_batch is not None:
                on_batch()
            return feed

        def rewind(self) -> None:
            self._it = iter(calib_feeds)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgekit-qnn-") as tmp, quiet():
        src, opt, pre = (str(Path(tmp) / f"{k}.onnx") for k in ("fixed", "opt", "pre"))
        onnx.save(model, src)
        # ORT basic optimizations first: quantizing some raw dynamo graphs (the VLA's) gives
        # an invalid model otherwise (qnn_preprocess_model keeps its optimized copy only
        # when it fused something).
        quant_pre_process(src, opt, skip_symbolic_shape=True)
        model = onnx.load(opt)
        del model.metadata_props[:]  # qnn_preprocess_model crashes on existing metadata
        onnx.save(model, opt)
        changed = qnn_preprocess_model(opt, pre, fuse_layernorm=True)
        model = onnx.load(pre if changed else opt)
        unshare_initializers(model)  # after ORT's optimizer, which shares equal constants
        onnx.save(model, src)
        cfg = get_qnn_qdq_config(
            src,
            _Reader(),
            activation_type=act,
            weight_type=wt,
            per_channel=per_channel,
            keep_removable_activations=True,  # module doc: a folded ReLU can miscompute
        )
        quantize(src, str(out_path), cfg)
    ops = [n.op_type for n in onnx.load(str(out_path), load_external_data=False).graph.node]
    return {
        "path": str(out_path),
        "activation_type": "uint16" if activation_bits == 16 else "uint8",
        "weight_type": "int8" if per_channel else "uint8",
        "per_channel": per_channel,
        "calibration_samples": len(calib_feeds),
        "preprocessed": bool(changed),
        "fixed_shapes": fixed,
        "quantize_linear": ops.count("QuantizeLinear"),
        "dequantize_linear": ops.count("DequantizeLinear"),
    }


def htp_vs_cpu(qdq_path: Path, target: str, feeds: list[Arrays]) -> dict[str, Any]:
    """Relative L2 of HTP outputs vs the same QDQ model on onnxruntime CPU, per output over
    ``feeds``: the HTP does not always compute what the QDQ graph says (module doc)."""
    import onnxruntime as ort

    htp = HtpRuntime({"m": Path(qdq_path)}, target)
    cpu = ort.InferenceSession(str(qdq_path), providers=["CPUExecutionProvider"])
    got = [htp.run("m", f) for f in feeds]
    ref = [dict(zip(htp.outputs["m"], cpu.run(None, f), strict=True)) for f in feeds]
    rel = {}
    for k in htp.outputs["m"]:
        a = np.concatenate([g[k].ravel() for g in got]).astype(np.float64)
        b = np.concatenate([r[k].ravel() for r in ref]).astype(np.float64)
        rel[k] = float(np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), 1e-12))
    return {"target": htp.target, "rel_l2": rel, "max_rel_l2": max(rel.values())}


def _fix_static_shapes(model: Any, feeds: list[Arrays], path: Path) -> dict[str, list[int]]:
    """Check feeds against the inputs; fix dynamic dims to the feeds' shapes."""
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = {i.name for i in inputs}
    fixed: dict[str, list[int]] = {}
    for k, feed in enumerate(feeds):
        if set(feed) != names:
            raise BadInputError(
                f"{path}: calibration sample {k} has inputs {sorted(feed)}, "
                f"the model takes {sorted(names)}"
            )
    for i in inputs:
        shape = list(np.shape(feeds[0][i.name]))
        if any(np.shape(f[i.name]) != tuple(shape) for f in feeds):
            raise BadInputError(
                f"{path}: input {i.name!r} changes shape across calibration "
                "samples; QNN HTP needs one static shape"
            )
        dims = i.type.tensor_type.shape.dim
        if len(dims) != len(shape) or any(
            d.HasField("dim_value") and d.dim_value != s for d, s in zip(dims, shape, strict=False)
        ):
            raise BadInputError(
                f"{path}: input {i.name!r} expects "
                f"{[d.dim_value or d.dim_param for d in dims]}, got {shape}"
            )
        if any(not d.HasField("dim_value") for d in dims):
            fixed[i.name] = shape  # decided first: fixing one dim_param fixes it everywhere
    for name, shape in fixed.items():
        make_input_shape_fixed(model.graph, name, shape)
    if fixed:
        fix_output_shapes(model)
    return fixed
