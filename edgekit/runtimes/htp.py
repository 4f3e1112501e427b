"""The Qualcomm HTP (Hexagon NPU) through onnxruntime-qnn: the plugin EP, its provider options
per target, and :class:`HtpRuntime` (the x86 simulator here, the NPU on the device).

Register the plugin EP with ``onnxruntime.register_execution_provider_library``, then
``SessionOptions.add_provider_for_devices``; one simulated inference takes ~1 s on an x86
host, so its time is never device latency.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgekit.errors import BackendMissingError, BadInputError
from edgekit.loop import Arrays

EP_NAME = "QNNExecutionProvider"


# Target -> QNN SoC model id (QnnTypes.h; QCS6490 = 93 postdates that header and was checked
# by QNN 2.51 naming it back). No QRB5165 (SM8250 = 21): the HTP backend cannot target v66.
SOC_MODEL: dict[str, int] = {"qcs6490": 93, "qcs8550": 66, "sd8gen3": 57}
_registration = threading.Lock()
_registered: list[bool] = []


# Target -> Hexagon HTP architecture (QNN's htp_arch option).
HTP_ARCH: dict[str, int] = {"qcs6490": 68, "qrb5165": 66, "qcs8550": 73, "sd8gen3": 75}


MIN_HTP_ARCH = 68


SIM_NOTE = "x86 HTP simulator: per-call time is simulation cost on this CPU, not device latency"


_QDQ = ("QuantizeLinear", "DequantizeLinear")


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
            sess = session(path, self.provider_options, threads, strict=strict)
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


# What the QNN libraries printed (fd 1 and 2) while sessions were made, most recent last: kept
# off the user's streams (--debug shows it), and named in the error when a session fails.
NATIVE_LOG: list[str] = []
_NATIVE_KEEP = 50


@contextmanager
def native_output_captured() -> Iterator[list[str]]:
    """Capture what native code writes to the process's stdout and stderr (fd 1 and 2) in the
    block: the QNN libraries print configuration lines (``# LIBNATIVE: No alternate
    configuration ...``) when an HTP session is created or a context binary generated, which
    would land in a ``--json -`` stdout, a CI log or the middle of a live progress line.

    Yields a list that holds the captured text after the block; it is also appended to
    :data:`NATIVE_LOG`, and written to stderr with ``--debug``."""
    import tempfile

    from edgekit.errors import debug

    got: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield got
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            if text.strip():
                got.append(text)
                NATIVE_LOG.append(text)
                del NATIVE_LOG[:-_NATIVE_KEEP]
                if debug():
                    sys.stderr.write(text if text.endswith("\n") else text + "\n")
                    sys.stderr.flush()


def _saved_native_log(text: str) -> str:
    """`` (QNN's own output: FILE)`` for an error message, or "" when it printed nothing."""
    import tempfile

    if not text.strip():
        return ""
    fd, name = tempfile.mkstemp(prefix="edgekit-qnn-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return f" (QNN's own output: {name})"


def session(
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
    native: list[str] = []
    try:
        with native_output_captured() as native:
            return ort.InferenceSession(str(path), so)
    except Exception as e:
        saved = _saved_native_log("".join(native))
        raise BadInputError(f"{path}: QNN HTP cannot load it ({e}){saved}") from None


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
