"""``edgekit export``: ONNX with its parity checks, QNN context binaries, TensorRT-ready ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.cli.render import line, table, verdict

if TYPE_CHECKING:
    from edgekit.export.onnx import ExportResult
    from edgekit.export.qnn import QnnExportResult
    from edgekit.export.tensorrt import TrtExportResult


def print_onnx(result: ExportResult, out: Path) -> None:
    m = result.manifest
    files = ", ".join(e["file"] for e in m.files.values())
    if result.written:
        line(f"exported {m.source['ref']} -> {out} ({files})")
    else:
        line(f"exported {m.source['ref']}: parity failed, nothing written to {out}")
    for r in result.parity:
        status = "ok" if r.ok else "FAIL"
        line(
            f"  parity {r.scope:7s} {r.name}.{r.output}: max-abs {r.max_abs:.2e} "
            f"(limit {r.limit:.2e}), cosine {r.cosine:.6f}  {status}"
        )


def print_qnn(r: QnnExportResult) -> None:
    rep = r.report
    line(
        f"QNN context binaries for {rep['target']} (HTP v{rep['htp_arch']}, soc_model "
        f"{rep['soc_model']}) -> {r.out}"
    )
    for net, c in rep["contexts"].items():
        sizes = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in c["sizes"].items())
        line(f"  {net}: {sizes}; reloaded context vs QDQ max-abs {c['max_abs_diff']:.2e}")
    for net, fb in rep["cpu_fallback"].items():
        p = rep["placement"][net]
        line(
            f"  placement {net}: {p.get('qnn_nodes')} of {p.get('total_nodes')} nodes on QNN, "
            f"{len(fb)} fell back to CPU" + (f": {fb}" if fb else "")
        )
    fid = rep["fidelity"]
    table(
        f"whole-tick fidelity vs {fid['reference']} ({fid['measured_on']}, {fid['ticks']} ticks)",
        ["program", "output", "max-abs", "rel-L2", "cosine"],
        [
            [row["program"], row["output"], f"{row['max_abs']:.3g}",
             f"{row['rel_l2'] * 100:.2f}%", f"{row['cosine']:.5f}"]
            for row in fid["rows"]
        ],
    )  # fmt: skip
    need = rep["device_needs"]
    line(
        f"device needs: QNN SDK {need.get('qnn_sdk')}, onnxruntime {need.get('onnxruntime')}, "
        f"onnxruntime-qnn {need.get('onnxruntime_qnn')}"
    )
    line("latency: not measured (the HTP simulator's time is not device latency)")
    st = rep["strict"]
    fallback = sum(len(v) for v in rep["cpu_fallback"].values())
    text = "; ".join(st["problems"]) if not r.passed else (
        f"{fallback} node(s) on CPU, worst rel-L2 {fid['worst_rel_l2']:.2%}"
    )  # fmt: skip
    if not r.gates:
        text += " (set --max-error or --strict to gate it)"
    verdict(r.passed, text, gated=bool(r.gates))


def print_tensorrt(r: TrtExportResult) -> None:
    rep = r.report
    line(f"TensorRT-ready ONNX for {rep['target']} at {rep['precision'].upper()} -> {r.out}")
    for net, info in rep["networks"].items():
        shapes = "static shapes" if info["static_shapes"] else f"profile {info['profile']}"
        kept = ", ".join(info["fp32_kept_ops"]) or "-"
        qdq = "explicit Q/DQ" if info["explicit_qdq"] else "no Q/DQ"
        rest = info.get("float_remainder", "fp32").upper()
        line(f"  {net}: {info['onnx']}, {shapes}, {qdq}, float layers {rest}, kept FP32: {kept}")
    line(f"op check: passed ({rep['op_check']['source']})")
    fid = rep["fidelity"]
    if fid.get("checked"):
        line(
            f"fidelity ({fid['measured_on']}, {fid['ticks']} ticks): worst whole-tick rel-L2 "
            f"{fid['worst_rel_l2']:.3%}"
        )
    else:
        line(f"fidelity: not checked here ({fid.get('why', 'skipped')})")
    if rep["built"]:
        line(f"engines built with TensorRT {rep['tensorrt_version']} on {rep['gpu']}")
    else:
        line("engines: not built here (no TensorRT/GPU); build plan (build_engines.sh):")
        for cmd in rep["plan"]["trtexec"]:
            line(f"  {cmd}")
        line(f"  or: {rep['plan']['edgekit']}")
