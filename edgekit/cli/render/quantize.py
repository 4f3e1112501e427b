"""``edgekit quantize``: scheme, size, whole-tick fidelity vs FP32, speed and the gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgekit.cli.render import budget_text, fidelity_cells, line, table, verdict, warning_lines

if TYPE_CHECKING:
    from edgekit.quantize.api import QuantizeResult


def print_quantize(r: QuantizeResult) -> None:
    rep = r.report
    size = rep["size_bytes"]
    cal = rep["calibration"]
    if rep["method"] is None:  # weight-only (INT4): nothing is calibrated on activations
        detail = rep.get("scheme_detail") or {}
        how = (f"weights rounded to nearest per block of {detail.get('block_size', '?')}, no "
               f"activation calibration; fidelity on {cal['holdout_samples']} held-out ticks of "
               f"{cal['source']}")  # fmt: skip
    else:
        how = (f"calibration {rep['method']} on {cal['calibration_samples']} samples of "
               f"{cal['source']}, fidelity on {cal['holdout_samples']} held-out ticks")  # fmt: skip
    line(f"{rep['precision']} for {rep['target']}: scheme {rep['scheme']}, {how}")
    line(
        f"size: {size['fp32'] / 1e6:.2f} MB FP32 -> {size['quantized'] / 1e6:.2f} MB "
        f"({size['ratio'] * 100:.0f}%)"
    )
    fid = rep["fidelity"]
    table(
        f"whole-tick fidelity vs FP32 (measured on {fid['measured_on']})",
        ["scope", "program", "output", "max-abs", "rel-L2", "cosine", "agreement"],
        [[row["scope"], *fidelity_cells(row)] for row in fid["rows"]],
    )
    lat = rep["latency"]
    if lat.get("measured"):
        line(
            f"speed (MEASURED on {lat['where']}): whole-tick p50 {lat['fp32_p50_ms']:.3f} ms FP32 "
            f"-> {lat['quantized_p50_ms']:.3f} ms ({lat['speedup']:.2f}x)"
        )
    else:
        line(f"speed: not measured ({lat.get('why', '')})")
    isa = rep.get("cpu_isa")
    if isa and isa.get("note"):
        line(f"note: {isa['note']}")
    choices = rep["extra"].get("choices") or []
    if len(choices) > 1 or rep["kept_float"]:
        print_choices(choices)
        chosen = rep["extra"].get("chosen") or {}
        if chosen.get("choice"):
            line(f"chosen: {chosen['choice']} ({chosen.get('why', '')})")
    if rep["kept_float"]:
        line(f"kept in float ({len(rep['kept_float'])}): {', '.join(rep['kept_float'])}")
    placement = rep["extra"].get("placement")
    if placement:
        for net, p in placement.items():
            fb = p.get("cpu_fallback", [])
            line(
                f"HTP placement {net}: {p.get('qnn_nodes')} of {p.get('total_nodes')} nodes on "
                f"QNN, {len(fb)} fell back to CPU" + (f": {fb}" if fb else "")
            )
    warning_lines(r.warnings)
    verdict(r.passed, budget_text(r.error, fid, r.config.max_error), gated=bool(r.gates))


def print_choices(choices: list[dict[str, Any]]) -> None:
    """What stays in float, each choice tried: its whole-tick figure and each network's error."""

    def met(c: dict[str, Any]) -> str:
        return "-" if c["met"] is None else ("yes" if c["met"] else "no")

    def value(c: dict[str, Any]) -> str:
        if c["value"] is None:
            return "n/a"
        return f"{c['value'] * 100:.2f}%" + ("" if c["metric"] == "rel_l2" else f" {c['metric']}")

    table(
        "choices tried (whole tick vs FP32, in order)",
        ["choice", "float weights", "whole tick", "per network rel-L2", "meets budget"],
        [
            [
                c["choice"],
                f"{c['float_weights'] * 100:.0f}%",
                value(c),
                ", ".join(f"{n} {e * 100:.2f}%" for n, e in c["network_rel_l2"].items()),
                met(c),
            ]
            for c in choices
        ],
    )
