"""INT8 for x86/ARM CPUs on OpenVINO: NNCF post-training quantization of the OpenVINO model.

Each network's FP32 ONNX file is read by OpenVINO and quantized by ``nncf.quantize`` on the
inputs it really sees in the tick (the same in-tick capture as the onnxruntime path), then
written as OpenVINO IR (``NET.xml`` + ``NET.bin``). NNCF has no whole-tick error budget, so
edgekit searches over what NNCF offers and what it ignores, measuring each choice on whole
ticks and reporting every one:

1. NNCF's defaults (mixed preset; the fastest);
2. ``model_type=TRANSFORMER`` (keeps the error-prone attention and normalisation parts in
   float: slower, more faithful on transformers);
3. TRANSFORMER with SmoothQuant (alpha 0.5 on MatMuls: activation outliers moved into the
   weights), then with full bias correction instead of the fast one;
4. the best of these with the heaviest network kept in float, then two..., as ``--keep-float``
   does on the onnxruntime path.

The first choice within ``--max-error`` is kept (without a budget: the first). CPUs whose INT8
kernels saturate (AVX2 without VNNI, :mod:`edgekit.isa`) get NNCF's overflow fix (7-bit
weights), the analogue of onnxruntime's ``reduce_range``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

from edgekit import progress
from edgekit.quantize.choices import Choice
from edgekit.quantize.context import Context, Outcome

MEASURED_ON = "OpenVINO CPU plugin (float parts in f32, INT8 kernels of this CPU)"


def _weights(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for init in model.graph.initializer:
        n = 1
        for d in init.dims:
            n *= int(d)
        total += n
    return total


# The NNCF settings each step of the search tries (name -> settings), in order.
PLANS: dict[str, dict[str, Any]] = {
    "NNCF defaults": {},
    "NNCF model_type=TRANSFORMER": {"transformer": True},
    "NNCF TRANSFORMER + SmoothQuant 0.5": {"transformer": True, "smooth_quant": 0.5},
    "NNCF TRANSFORMER + full bias correction": {"transformer": True, "fast_bias": False},
}


def _quantize_one(path: Path, feeds: list[dict[str, Any]], plan: dict[str, Any], overflow: bool,
                  out: Path) -> None:  # fmt: skip
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )

    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(str(path))
    advanced = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix.ENABLE if overflow else OverflowFix.DISABLE
    )
    if "smooth_quant" in plan:
        advanced.smooth_quant_alphas = AdvancedSmoothQuantParameters(matmul=plan["smooth_quant"])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        q = nncf.quantize(
            model,
            nncf.Dataset(feeds),
            subset_size=len(feeds),
            model_type=nncf.ModelType.TRANSFORMER if plan.get("transformer") else None,
            fast_bias_correction=plan.get("fast_bias", True),
            advanced_parameters=advanced,
        )
    from openvino._offline_transformations import compress_quantize_weights_transformation

    compress_quantize_weights_transformation(q)  # INT8 weights on disk, as they run
    ov.save_model(q, str(out), compress_to_fp16=False)


def _float_one(path: Path, out: Path) -> None:
    import openvino as ov

    ov.save_model(ov.Core().read_model(str(path)), str(out), compress_to_fp16=False)


def openvino_int8(ctx: Context, stage: Path) -> Outcome:
    """Quantize every network with NNCF, search the choices above, write the kept one."""
    import nncf

    from edgekit.loop.fidelity import metric_value
    from edgekit.runtimes.openvino import OpenVinoRuntime

    isa = ctx.target.cpu_isa()
    overflow = isa.saturates_u8s8
    budget = ctx.config.max_error
    metric = (budget.metric if budget else None) or "rel_l2"
    nets = list(ctx.fp32_files)
    weights = {n: _weights(p) for n, p in ctx.fp32_files.items()}
    total = sum(weights.values()) or 1
    keep = list(dict.fromkeys(getattr(ctx.config, "keep_float", [])))
    tried: list[Choice] = []
    built: list[dict[str, Path]] = []  # each choice's files, in the order tried

    def build(name: str, floats: list[str]) -> Choice:
        folder = ctx.work / f"ov-{len(built)}"
        folder.mkdir()
        out = {}
        with progress.task(f"NNCF on OpenVINO: {name}", total=len(nets)) as task:
            for n in nets:
                out[n] = folder / f"{n}.xml"
                if n in floats:
                    _float_one(ctx.fp32_files[n], out[n])
                else:
                    _quantize_one(ctx.fp32_files[n], ctx.feeds[n], PLANS[name], overflow, out[n])
                task.advance()
        rows = ctx.fidelity(OpenVinoRuntime(out, ctx.threads))
        value = metric_value(rows, metric)
        label = name + (f", float {' + '.join(floats)}" if floats else "")
        choice = Choice(label, floats, sum(weights[n] for n in floats) / total, metric, value,
                        None if budget is None else budget.met(value), {}, rows)  # fmt: skip
        tried.append(choice)
        built.append(out)
        return choice

    chosen = None
    for name in PLANS:
        c = build(name, keep)
        if budget is None or c.met:
            chosen = c
            break
    if chosen is None:  # keep the heaviest networks in float, one more at a time
        best = min(tried, key=lambda c: c.value if c.value is not None else float("inf"))
        plan = best.label.split(",")[0]
        order = sorted((n for n in nets if n not in keep), key=lambda n: -weights[n])
        floats = list(keep)
        for n in order[:-1]:  # at least one network stays INT8
            floats.append(n)
            c = build(plan, list(floats))
            if c.met:
                chosen = c
                break
    if chosen is None:  # nothing met the budget: the closest, and the gate says so
        chosen = min(tried, key=lambda c: c.value if c.value is not None else float("inf"))
    files: dict[str, Path] = {}
    for n, src in built[tried.index(chosen)].items():
        files[n] = stage / src.name
        for part in (src, src.with_suffix(".bin")):
            (stage / part.name).write_bytes(part.read_bytes())
    from edgekit.quantize.handlers import measure_latency

    fix = "enable (7-bit weights: this ISA's INT8 kernels saturate)" if overflow else "disable"
    detail = {
        "runtime": "openvino",
        "tool": f"nncf {nncf.__version__}",
        "method": "nncf (min-max statistics on the captured inputs, fast bias correction)",
        "isa": isa.name,
        "overflow_fix": fix,
        "format": "OpenVINO IR (NET.xml + NET.bin)",
    }
    if budget is None:
        why = "no budget: the first"
    else:
        why = "first within --max-error" if chosen.met else "closest to the budget"
    rt = OpenVinoRuntime(files, ctx.threads)
    return Outcome(
        files,
        "openvino-nncf-int8" + ("+float" if chosen.kept_float else ""),
        chosen.rows,
        MEASURED_ON,
        detail,
        kept_float=chosen.kept_float,
        latency=measure_latency(ctx, rt, "this host's CPU: OpenVINO INT8 vs onnxruntime FP32"),
        extra={
            "choices": [c.to_dict() for c in tried],
            "chosen": {"choice": chosen.label, "why": why},
        },
    )
