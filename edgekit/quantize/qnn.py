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

import os
import platform
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import BackendMissingError, BadInputError
from edgekit.loop import Arrays
from edgekit.quantize.int8 import quiet, unshare_initializers

EP_NAME = "QNNExecutionProvider"
# Target -> Hexagon HTP architecture (QNN's htp_arch option).
HTP_ARCH: dict[str, int] = {"qcs6490": 68, "qrb5165": 66, "qcs8550": 73, "sd8gen3": 75}
# Target -> QNN SoC model id (QnnTypes.h; QCS6490 = 93 postdates that header and was checked
# by QNN 2.51 naming it back). No QRB5165 (SM8250 = 21): the HTP backend cannot target v66.
SOC_MODEL: dict[str, int] = {"qcs6490": 93, "qcs8550": 66, "sd8gen3": 57}
MIN_HTP_ARCH = 68
SIM_NOTE = "x86 HTP simulator: per-call time is simulation cost on this CPU, not device latency"

_QDQ = ("QuantizeLinear", "DequantizeLinear")
_registration = threading.Lock()
_registered: list[bool] = []


def qnn_quantize(
    fp32_path: Path,
    out_path: Path,
    calib_feeds: list[Arrays],
    activation_bits: int = 8,
    per_channel: bool = False,
) -> dict[str, Any]:
    """Write a QDQ model for QNN HTP: A8W8 or A16W8, weights uint8 per-tensor or int8
    per-channel. ``calib_feeds``: feed dicts (input name -> array, batch dim included).
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
            return next(self._it, None)

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


class HtpRuntime:
    """One onnxruntime session per network on the QNN HTP backend (the simulator on x86).

    Implements :class:`edgekit.loop.Runtime`. Nodes the HTP cannot run fall back to the CPU
    EP unless ``strict`` (then session creation fails); ``placement()`` says which.
    """

    name = "qnn-htp-sim"

    def __init__(
        self,
        files: dict[str, Path],
        target: str,
        threads: int = 1,
        performance_mode: str = "burst",
        strict: bool = False,
    ) -> None:
        self.target, self.provider_options = htp_provider_options(target, performance_mode)
        self.threads, self.strict = threads, strict
        self.simulator = platform.machine().lower() in ("x86_64", "amd64")
        if not self.simulator:
            self.name = "qnn-htp"
        self.sessions: dict[str, Any] = {}
        self.outputs: dict[str, list[str]] = {}
        self._placement: dict[str, dict[str, Any]] = {}
        for net, path in files.items():
            sess = _session(path, self.provider_options, threads, strict=strict)
            self.sessions[net] = sess
            self.outputs[net] = [o.name for o in sess.get_outputs()]
            self._placement[net] = _placement(sess, Path(path))

    def run(self, network: str, feeds: Arrays) -> Arrays:
        return dict(
            zip(self.outputs[network], self.sessions[network].run(None, feeds), strict=True)
        )

    def settings(self) -> dict[str, Any]:
        return {
            "runtime": "onnxruntime-qnn",
            "backend": "htp",
            "target": self.target,
            "htp_arch": int(self.provider_options["htp_arch"]),
            "soc_model": int(self.provider_options.get("soc_model", 0)),
            "htp_performance_mode": self.provider_options["htp_performance_mode"],
            "cpu_fallback": not self.strict,
            "intra_op_threads": self.threads,
            "simulator": self.simulator,
            "note": SIM_NOTE if self.simulator else "on-device HTP",
            **versions(),
        }

    def placement(self) -> dict[str, dict[str, Any]]:
        """Per network: total nodes, nodes on QNN, QNN partitions, CPU fallbacks."""
        return {k: dict(v) for k, v in self._placement.items()}


def compile_context(
    qdq_path: Path, out_dir: Path, target: str, feeds: Arrays | None = None
) -> dict[str, Any]:
    """Write ``<name>_ctx.onnx`` + its QNN context ``.bin`` for the target's HTP arch, load it
    back in a new session and compare it with the QDQ model on ``feeds`` (default: seeded
    normal data of the model's input shapes; this is an equality check, not calibration)."""
    import onnx

    qdq_path, out_dir = Path(qdq_path), Path(out_dir)
    name, opts = htp_provider_options(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx_name = f"{qdq_path.stem}_ctx.onnx"
    staging = Path(tempfile.mkdtemp(prefix=".ctx.tmp-", dir=out_dir))
    try:
        extra = {
            "ep.context_enable": "1",
            "ep.context_embed_mode": "0",
            "ep.context_file_path": str(staging / ctx_name),
        }
        _session(qdq_path, opts, 1, config=extra)
        ctx_model = onnx.load(str(staging / ctx_name), load_external_data=False)
        attrs = [
            {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            for n in ctx_model.graph.node
            if n.op_type == "EPContext"
        ]
        # embed_mode 0: the main EPContext node names the .bin holding every partition's graph
        bins = [a["ep_cache_context"].decode() for a in attrs if a.get("main_context") == 1]
        for f in [ctx_name, *bins]:
            (staging / f).replace(out_dir / f)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ctx_path = out_dir / ctx_name
    ref = HtpRuntime({"qdq": qdq_path}, name)
    back = HtpRuntime({"ctx": ctx_path}, name)
    if feeds is None:
        rng = np.random.default_rng(0)
        feeds = {
            i.name: rng.standard_normal(i.shape).astype(np.float32)
            if "float" in i.type
            else np.zeros(i.shape, np.int64 if "int64" in i.type else np.int32)
            for i in ref.sessions["qdq"].get_inputs()
        }
    a, b = ref.run("qdq", feeds), back.run("ctx", feeds)
    diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a)
    meta = {p.key: p.value for p in ctx_model.metadata_props}
    return {
        "target": name,
        "htp_arch": int(opts["htp_arch"]),
        "soc_model": int(opts.get("soc_model", 0)),
        "context_model": str(ctx_path),
        "context_binaries": [str(out_dir / b) for b in bins],
        "sizes": {f.name: f.stat().st_size for f in [ctx_path, *(out_dir / b for b in bins)]},
        "ep_sdk_version": attrs[0].get("ep_sdk_version", b"").decode() if attrs else "",
        "ep_compatibility": meta.get(f"ep_compatibility_info.{EP_NAME}", ""),
        "context_placement": back.placement()["ctx"],
        "max_abs_diff": diff,
        **versions(),
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


def htp_provider_options(target: str, performance_mode: str = "burst") -> tuple[str, dict]:
    """Canonical target name and QNN EP provider options for its HTP."""
    from edgekit.targets import get_target

    t = get_target(target)
    if t.family != "qualcomm" or t.name not in HTP_ARCH:
        raise BadInputError(
            f"target {target!r} is not a Qualcomm HTP target; use one of {', '.join(HTP_ARCH)}"
        )
    arch = HTP_ARCH[t.name]
    if arch < MIN_HTP_ARCH:
        raise BackendMissingError(
            f"target {t.name!r} ({t.accelerator}, HTP v{arch}) cannot be targeted: the QNN HTP "
            f"backend builds for v{MIN_HTP_ARCH}+ only and v{arch} needs QNN's DSP backend, "
            "which onnxruntime-qnn does not ship"
        )
    _, qnn = _backend()
    opts = {
        "backend_path": qnn.get_qnn_htp_path(),
        "htp_arch": str(arch),
        "htp_performance_mode": performance_mode,
    }
    if t.name in SOC_MODEL:
        opts["soc_model"] = str(SOC_MODEL[t.name])
    return t.name, opts


def versions() -> dict[str, str]:
    ort, qnn = _backend()
    from onnxruntime_qnn import build_and_package_info as info

    return {
        "onnxruntime": ort.__version__,
        "onnxruntime_qnn": qnn.__version__,
        "qnn_sdk": str(getattr(info, "qnn_version", "unknown")),
    }


def _backend() -> tuple[Any, Any]:
    """Import onnxruntime + onnxruntime_qnn and register the plugin EP once per process."""
    from edgekit.runtimes import require

    qnn = require("onnxruntime_qnn", "qnn")
    import onnxruntime as ort

    with _registration:
        if not _registered:
            if not any(d.ep_name == EP_NAME for d in ort.get_ep_devices()):
                try:
                    ort.register_execution_provider_library(EP_NAME, qnn.get_library_path())
                except Exception as e:  # registered elsewhere under our name: fine
                    if "already registered" not in str(e):
                        raise BackendMissingError(f"cannot load the QNN EP library ({e})") from None
            _registered.append(True)
    return ort, qnn


@contextmanager
def _native_stdout_to_stderr() -> Iterator[None]:
    """The QNN library prints a configuration line on the process's stdout (fd 1) when the
    first HTP session is created; keep stdout for edgekit's own output (tables, JSON)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _session(
    path: Path, opts: dict, threads: int, strict: bool = False, config: dict[str, str] | None = None
) -> Any:
    ort, _ = _backend()
    devices = [d for d in ort.get_ep_devices() if d.ep_name == EP_NAME]
    npu = [d for d in devices if d.device.type == ort.OrtHardwareDeviceType.NPU]
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1" if strict else "0")
    for k, v in (config or {}).items():
        so.add_session_config_entry(k, v)
    so.log_severity_level = 4  # fallbacks are reported by placement(), not on stderr
    so.add_provider_for_devices(npu or devices, opts)
    try:
        with _native_stdout_to_stderr():
            return ort.InferenceSession(str(path), so)
    except Exception as e:
        raise BadInputError(f"{path}: QNN HTP cannot load it ({e})") from None


def _placement(sess: Any, path: Path) -> dict[str, Any]:
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    ins, outs, in_file = (
        {i.name for i in g.input},
        {o.name for o in g.output},
        {n.name for n in g.node},
    )
    io_quant = {
        n.name
        for n in g.node
        if (n.op_type == "QuantizeLinear" and n.input[0] in ins)
        or (n.op_type == "DequantizeLinear" and n.output[0] in outs)
    }
    total = on_qnn = partitions = 0
    fallback: list[dict[str, str]] = []
    io_cpu: list[dict[str, str]] = []
    for sg in sess.get_provider_graph_assignment_info():
        nodes = sg.get_nodes()
        total += len(nodes)
        if sg.ep_name == EP_NAME:
            partitions, on_qnn = partitions + 1, on_qnn + len(nodes)
            continue
        for n in nodes:
            row = {"name": n.name, "op_type": n.op_type, "ep": sg.ep_name}
            inserted = n.op_type in _QDQ and n.name not in in_file  # EP's own I/O conversion
            (io_cpu if n.name in io_quant or inserted else fallback).append(row)
    return {
        "total_nodes": total,
        "qnn_nodes": on_qnn,
        "qnn_partitions": partitions,
        "cpu_fallback": fallback,
        "cpu_io_quantization": io_cpu,
        "fully_on_qnn": not fallback,
    }


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
