"""One handler per precision (int8, int4, mixed), registered in ``HANDLERS``.

A handler writes the quantized networks into the staging folder and measures them; the
orchestrator (``api.py``) owns data, gating and the manifest. What a handler is given and
returns (:class:`Context`, :class:`Outcome`) is in ``context.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit import progress
from edgekit.errors import BadInputError
from edgekit.loop.fidelity import metric_value, worst_error
from edgekit.quantize.config import Int4Config, QuantizeConfig, method
from edgekit.quantize.context import Context, Outcome
from edgekit.quantize.int8 import PreparedNetwork, prepare, quantize_network
from edgekit.registry import Registry
from edgekit.runtimes import OrtRuntime
from edgekit.targets import Target
from edgekit.targets.schemes import Scheme


class Handler:
    def check_target(self, config: QuantizeConfig, target: Target) -> None:
        """Refuse precision/target pairs the target cannot run, before any work."""

    def run(self, ctx: Context, stage: Path) -> Outcome:
        raise NotImplementedError


def measure_latency(ctx: Context, runtime: Any, label: str) -> dict[str, Any]:
    """Whole-tick p50, FP32 vs quantized, alternating blocks in one process (measured here)."""
    from edgekit.loop.timing import time_ticks

    if ctx.program is None or ctx.config.latency_ticks <= 0:
        return {"measured": False, "why": "latency check disabled"}
    n = max(1, ctx.config.latency_ticks // 3)
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    with progress.timed(f"timing latency, FP32 vs quantized: 3 x {n} ticks each"):
        for _ in range(3):
            a.append(time_ticks(ctx.program, ctx.fp32, n, warmup=1).planning_ns)
            b.append(time_ticks(ctx.program, runtime, n, warmup=1).planning_ns)
    fp32_ms = float(np.median(np.concatenate(a))) / 1e6
    q_ms = float(np.median(np.concatenate(b))) / 1e6
    return {
        "measured": True,
        "where": label,
        "method": f"whole-tick p50 of the ticks that run the networks, {3 * n} ticks each, "
        "FP32 and quantized alternating",
        "fp32_p50_ms": fp32_ms,
        "quantized_p50_ms": q_ms,
        "speedup": fp32_ms / q_ms if q_ms > 0 else None,
        "threads": ctx.threads,
    }


def _host_label(target: Target) -> str:
    if target.family == "cpu":
        return "this host's CPU, onnxruntime"
    return f"this host's CPU, onnxruntime (not {target.device}: its latency is not measured here)"


# --- int8 ------------------------------------------------------------------------------------


def check_htp(target: Target) -> None:
    """Qualcomm targets: the QNN backend is installed and can build for this HTP, before work."""
    if target.family == "qualcomm":
        from edgekit.runtimes.htp import htp_provider_options

        htp_provider_options(target.name)


def checking_runtime(ctx: Context, files: dict[str, Path], scheme: Scheme) -> OrtRuntime:
    """The runtime fidelity is measured on: onnxruntime's fused kernels where the artifact runs
    on them, else the unfused Q/DQ graph (see ``Scheme.ort_kernels``)."""
    return OrtRuntime(files, threads=ctx.threads, optimize=scheme.ort_kernels)


def checked_on(scheme: Scheme) -> str:
    if scheme.ort_kernels:
        return "onnxruntime CPU (optimizations on)"
    return "onnxruntime CPU, Q/DQ unfused: the exact INT8 arithmetic (not this CPU's INT8 kernels)"


class Int8Handler(Handler):
    def check_target(self, config: QuantizeConfig, target: Target) -> None:
        check_keep_float_target(config, target)  # before the QNN check: a usage error
        if getattr(config, "runtime", "ort") == "openvino":
            if target.family != "cpu":
                raise BadInputError(
                    f"--runtime openvino with --target {target.name}: OpenVINO is for CPU "
                    "targets (x86, ARM); that target runs its own runtime"
                )
            from edgekit.runtimes.base import require

            require("openvino", "openvino")
            require("nncf", "compress")
            return
        check_htp(target)

    def run(self, ctx: Context, stage: Path) -> Outcome:
        from edgekit.quantize.choices import Measurer

        if getattr(ctx.config, "runtime", "ort") == "openvino":
            from edgekit.quantize.openvino import openvino_int8

            return openvino_int8(ctx, stage)

        schemes = ctx.target.int8_schemes()
        if schemes[0].backend == "qnn":
            return qnn_int8(ctx, stage, schemes)
        scheme = schemes[0]
        nets = prepare_all(ctx, scheme)
        keep = list(dict.fromkeys(getattr(ctx.config, "keep_float", [])))
        files = {
            n: quantize_network(
                p,
                stage / f"{n}.onnx",
                scheme,
                method(ctx.config),
                set(p.candidates) if n in keep else None,
            )
            for n, p in nets.items()
        }
        rt = OrtRuntime(files, threads=ctx.threads)
        chosen = Measurer(ctx, nets).measure(
            checking_runtime(ctx, files, scheme), keep, [], ctx.config.max_error
        )
        return Outcome(
            files,
            scheme.name + ("+float" if keep else ""),
            chosen.rows,
            checked_on(scheme),
            scheme.to_dict(),
            kept_float=chosen.kept_float,
            latency=measure_latency(ctx, rt, _host_label(ctx.target)),
            extra={
                "quantized_nodes": {
                    n: 0 if n in keep else len(p.candidates) for n, p in nets.items()
                },
                "choices": [chosen.to_dict()],
                "chosen": {"choice": chosen.label, "why": "--keep-float" if keep else "int8"},
            },
        )


def check_keep_float_target(config: QuantizeConfig, target: Target) -> None:
    """``keep_float`` is for the CPU and TensorRT schemes (the HTP path quantizes every network
    with its own tool)."""
    if getattr(config, "keep_float", None) and target.family == "qualcomm":
        raise BadInputError(
            f"--keep-float with --target {target.name}: keeping networks in float is not "
            "supported for the Hexagon HTP here; use it with cpu or jetson targets"
        )


def prepare_all(ctx: Context, scheme: Scheme) -> dict[str, PreparedNetwork]:
    nets = {}
    with progress.task("preparing networks", total=len(ctx.fp32_files)) as task:
        for n, path in ctx.fp32_files.items():
            task.update(info=n)
            nets[n] = prepare(n, path, ctx.work, scheme, ctx.feeds[n])
            task.advance(info="")
    return nets


def qnn_int8(ctx: Context, stage: Path, schemes: list[Scheme]) -> Outcome:
    """A8W8 first; A16W8 only when the error budget needs it. If neither meets the budget the
    better one is kept (16-bit activations are not always better on the HTP: see qnn.py)."""
    from edgekit.quantize.qnn import qnn_quantize
    from edgekit.runtimes.htp import HtpRuntime

    tried: list[dict[str, Any]] = []
    best: tuple[float, Outcome] | None = None
    for scheme in schemes:
        bits = 16 if scheme.activations == "uint16" else 8
        folder = ctx.work / scheme.name
        folder.mkdir(exist_ok=True)
        files, summaries = {}, {}
        for n, path in ctx.fp32_files.items():
            files[n] = folder / f"{n}.onnx"
            with progress.task(f"calibrating {n} ({scheme.name})", total=len(ctx.feeds[n])) as t:
                summaries[n] = qnn_quantize(
                    path, files[n], ctx.feeds[n], activation_bits=bits, on_batch=t.advance
                )
        with progress.task(f"loading {len(files)} network(s) on the HTP ({scheme.name})"):
            rt = HtpRuntime(files, ctx.target.name)
        rows = ctx.fidelity(rt)
        err = worst_error(rows)
        tried.append({"scheme": scheme.name, "worst_rel_l2": err})
        outcome = Outcome(
            files,
            scheme.name,
            rows,
            f"onnxruntime-qnn HTP simulator ({ctx.target.name})",
            scheme.to_dict(),
            latency={"measured": False, "why": "the HTP simulator's time is not device latency"},
            extra={
                "placement": rt.placement(),
                "qnn": summaries,
                "tried": tried,
                "htp": rt.settings(),
            },
        )
        budget = ctx.config.max_error
        value = metric_value(rows, budget.metric if budget else None)
        worse = -(value or 0.0) if budget and budget.minimum else (value or 0.0)  # agreements
        if best is None or worse < best[0]:
            best = (worse, outcome)
        if budget is None or budget.met(value):
            best = (worse, outcome)
            break
    assert best is not None
    chosen = best[1]
    for n, f in list(chosen.files.items()):  # move the chosen networks into the artifact
        chosen.files[n] = f.replace(stage / f.name)
    return chosen


# --- int4 ------------------------------------------------------------------------------------


class Int4Handler(Handler):
    def check_target(self, config: QuantizeConfig, target: Target) -> None:
        if target.family == "qualcomm":
            raise BadInputError(
                f"--precision int4 --target {target.name}: INT4 weight-only is not supported "
                "for the Hexagon HTP here; use --precision int8 (A8W8/A16W8)"
            )

    def run(self, ctx: Context, stage: Path) -> Outcome:
        from edgekit.quantize.int4 import quantize_int4

        cfg = ctx.config
        assert isinstance(cfg, Int4Config)
        cpu = ctx.target.family == "cpu"
        fmt = "matmulnbits" if cpu else "qdq"
        accuracy_level = 4 if cpu else None
        files, stats = {}, {}
        for n, path in ctx.fp32_files.items():
            files[n] = stage / f"{n}.onnx"
            with progress.task(f"quantizing {n} to INT4"):
                s = quantize_int4(
                    path,
                    files[n],
                    block_size=cfg.block_size,
                    symmetric=cfg.symmetric,
                    accuracy_level=accuracy_level,
                    fmt=fmt,
                )
            stats[n] = s.to_dict()
        rt = OrtRuntime(files, threads=ctx.threads)
        detail = {
            "format": fmt,
            "block_size": cfg.block_size,
            "symmetric": cfg.symmetric,
            "accuracy_level": accuracy_level,
            "weights": "int4 weight-only; activations and Conv layers stay float",
        }
        return Outcome(
            files,
            f"int4-{fmt}",
            ctx.fidelity(rt),
            "onnxruntime CPU (optimizations on)",
            detail,
            latency=measure_latency(ctx, rt, _host_label(ctx.target)),
            extra={"int4": stats},
        )


# --- mixed -----------------------------------------------------------------------------------


class MixedHandler(Handler):
    def check_target(self, config: QuantizeConfig, target: Target) -> None:
        check_keep_float_target(config, target)  # before the QNN check: a usage error
        check_htp(target)

    def run(self, ctx: Context, stage: Path) -> Outcome:
        from edgekit.quantize.mixed import search

        schemes = ctx.target.int8_schemes()
        if schemes[0].backend == "qnn":  # on the HTP, mixed = the activation width the budget needs
            return qnn_int8(ctx, stage, schemes)
        scheme = schemes[0]
        nets = prepare_all(ctx, scheme)
        assert ctx.config.max_error is not None
        keep = list(getattr(ctx.config, "keep_float", []))
        found = search(nets, scheme, ctx, ctx.config.max_error, keep)
        files = {
            n: quantize_network(
                p, stage / f"{n}.onnx", scheme, method(ctx.config), found.keep_for(p)
            )
            for n, p in nets.items()
        }
        rt = OrtRuntime(files, threads=ctx.threads)
        chosen = found.choices[-1] if found.choices else None
        for c in found.choices:  # the last one that met the budget is the one written
            if c.met:
                chosen = c
        return Outcome(
            files,
            f"{scheme.name}+float",
            ctx.fidelity(checking_runtime(ctx, files, scheme)),
            checked_on(scheme),
            scheme.to_dict(),
            kept_float=found.kept_names(),
            latency=measure_latency(ctx, rt, _host_label(ctx.target)),
            extra={
                "search": found.to_dict(),
                "choices": [c.to_dict() for c in found.choices],
                "chosen": {"choice": chosen.label if chosen else "", "why": found.why},
            },
        )


HANDLERS: Registry[Handler] = Registry("precision")
HANDLERS.add("int8", Int8Handler())
HANDLERS.add("int4", Int4Handler())
HANDLERS.add("mixed", MixedHandler())
