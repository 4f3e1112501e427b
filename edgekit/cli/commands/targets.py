"""``edgekit targets``: hardware targets, their published figures and default budgets."""

from __future__ import annotations

from edgekit.cli.options import JsonReportOpt, QuietOpt


def targets(json_out: JsonReportOpt = None, quiet: QuietOpt = False) -> None:
    """List hardware targets, their published figures and budgets.

    A budget is the loop period times the target's headroom; "measured" targets are timed on
    this machine, the others are estimated.
    """
    import json

    from edgekit.cli.guard import check_json, output, put_json
    from edgekit.cli.render import table
    from edgekit.targets import TARGETS

    output(json_out, quiet)
    check_json(json_out)

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    rows = []
    for _, t in TARGETS.items():
        budgets = " / ".join(f"{t.budget_ms(hz):.1f}" for hz in (10, 50, 200))
        rows.append(
            [
                t.name,
                t.device,
                f"{t.runtime} {t.tensorrt}" if t.tensorrt else t.runtime,
                fmt(t.int8_tops),
                fmt(t.fp16_tflops),
                fmt(t.memory_gbs),
                budgets,
                "measured" if t.measurable_here else "not here",
            ]
        )
    table(
        "targets (published figures; budgets = loop period x headroom)",
        [
            "target",
            "device",
            "runtime",
            "INT8 TOPS",
            "FP16 TFLOPS",
            "GB/s",
            "budget ms @10/50/200 Hz",
            "latency",
        ],
        rows,
    )
    if json_out:
        rows_json = json.dumps([t.to_dict() for _, t in TARGETS.items()], indent=2) + "\n"
        put_json(json_out, rows_json)
