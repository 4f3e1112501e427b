"""``edgekit compare``: several variants of a model side by side, fidelity against latency.

Each artifact is benched on the same target with the same settings (one after the other, on
this host, or a labelled estimate for a target that is not this machine), and its fidelity is
the one its manifest recorded when it was made: the stage's own error against that stage's
reference (quantize: the FP32 model it quantized; distill: its teacher; a QNN / TensorRT export:
its source). Errors of different stages are therefore not one scale; the table says which
reference each is against. An FP32 ONNX export is a reference (error 0, parity checked).

The comparison is a report, not a gate: it exits 0 whatever the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.bench.config import BenchConfig
from edgekit.gates import Gate, Gated
from edgekit.run.plot_variants import Variant

COMPARE_SCHEMA = "edgekit.compare/1"


def recorded_fidelity(checks: dict[str, Any], stage: str, fmt: str) -> dict[str, Any] | None:
    """The fidelity an artifact's manifest recorded: ``{stage, metric, value, reference}``.

    Args:
        checks: The manifest's ``checks``.
        stage: The manifest's ``stage`` (export, quantize, distill).
        fmt: The manifest's ``format`` (onnx, qnn, tensorrt).

    Returns:
        None when the manifest holds no fidelity (nothing was checked).
    """
    if stage == "quantize" and "quantize" in checks:
        fid = checks["quantize"].get("fidelity") or {}
        value, ref = fid.get("worst_rel_l2"), "the FP32 model it quantized"
        return _fid("quantize", "rel_l2", value, ref)
    if stage == "distill" and "distill" in checks:
        head = (checks["distill"].get("fidelity") or {}).get("headline") or {}
        return _fid("distill", head.get("metric", "rel_l2"), head.get("value"), "its teacher")
    if fmt == "qnn" and "qnn" in checks:
        fid = checks["qnn"].get("fidelity") or {}
        return _fid("export", "rel_l2", fid.get("worst_rel_l2"), "its source (HTP simulator)")
    if fmt == "tensorrt" and "tensorrt" in checks:
        fid = checks["tensorrt"].get("fidelity") or {}
        if fid.get("worst_rel_l2") is None:
            return None
        return _fid("export", "rel_l2", fid["worst_rel_l2"], "its source (Q/DQ on CPU)")
    if fmt == "onnx" and "parity" in checks:
        return {"stage": "export", "metric": "parity", "value": 0.0, "reference": None,
                "note": "FP32 export, parity with PyTorch checked: the reference"}  # fmt: skip
    return None


def _fid(stage: str, metric: str, value: Any, reference: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"stage": stage, "metric": metric, "value": float(value), "reference": reference}


@dataclass
class CompareRow:
    """One artifact: what it is, what its manifest recorded, and its bench."""

    artifact: str
    stage: str | None
    format: str | None
    fidelity: dict[str, Any] | None
    latency: dict[str, Any]
    bench: dict[str, Any]

    def variant(self) -> Variant:
        lat, fid = self.latency, self.fidelity or {}
        measured = lat["evidence"] == "measured"
        return Variant(
            Path(self.artifact).name or self.artifact,
            float(lat["p50_ms"] if measured else lat["estimated_ms"]),
            latency_ci=(float(lat["p50_ci95"][0]), float(lat["p50_ci95"][1])) if measured else None,
            error=fid.get("value"),
            metric=fid.get("metric"),
            reference=fid.get("reference"),
            latency_source=lat["evidence"],
        )


@dataclass
class CompareResult(Gated):
    """Every artifact's row, and the files written (``--out``)."""

    target: str
    rows: list[CompareRow]
    config: BenchConfig
    files: dict[str, str] = field(default_factory=dict)

    @property
    def gates(self) -> list[Gate]:
        return []  # a comparison reports; it holds nothing to a limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "edgekit.compare",
            "schema": COMPARE_SCHEMA,
            "target": self.target,
            "settings": self.config.model_dump(mode="json"),
            "fidelity_source": "each artifact's manifest (checks), against its stage's reference",
            "artifacts": [row.__dict__ for row in self.rows],
            "files": self.files,
        }


def _latency(report: Any) -> dict[str, Any]:
    from edgekit.bench.estimated import EstimateReport

    if isinstance(report, EstimateReport):
        return {"evidence": "estimated", "estimated_ms": report.tick_ms,
                "method": report.estimate.method}  # fmt: skip
    s = report.stats
    return {"evidence": "measured", "n": s.n, "p50_ms": s.p50, "p50_ci95": s.ci95["p50"],
            "p99_ms": s.p99, "p99_ci95": s.ci95["p99"],
            "p99_ci_reaches_max": "p99" in s.ci95_reaches_max}  # fmt: skip


def compare(artifacts: list[Any], config: BenchConfig | None = None) -> CompareResult:
    """Bench every artifact (a path, reference or loaded Source) with ``config`` and read the
    fidelity each recorded.

    Raises:
        BadInputError: an artifact that does not load, a bad bench setting (exit 2).
    """
    from edgekit.artifacts import is_artifact, load_artifact
    from edgekit.bench import bench
    from edgekit.loader import load

    cfg = config or BenchConfig()
    rows = []
    for item in artifacts:
        source = load(item) if isinstance(item, str) else item
        ref = str(source.ref)
        stage = fmt = None
        fidelity = None
        if is_artifact(Path(ref)):
            manifest = load_artifact(ref, verify=False).manifest
            stage, fmt = manifest.stage, manifest.format
            fidelity = recorded_fidelity(manifest.checks, stage, fmt)
        report = bench(source, cfg)
        rows.append(CompareRow(ref, stage, fmt, fidelity, _latency(report), report.to_dict()))
    return CompareResult(cfg.target, rows, cfg)


def markdown_table(result: CompareResult) -> str:
    """The comparison as a Markdown table (``compare.md``)."""
    lines = [
        f"### edgekit compare on {result.target}",
        "",
        "Fidelity as each artifact's manifest recorded it, against its stage's reference "
        "(errors of different stages are not one scale). Latency: whole tick, p50 and p99 "
        "with distribution-free 95% intervals.",
        "",
        "| artifact | made by | fidelity (recorded) | against | p50 ms [95% CI] | "
        "p99 ms [95% CI] | ticks | evidence |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result.rows:
        lines.append("| " + " | ".join(_cells(row)) + " |")
    return "\n".join(lines) + "\n"


def _cells(row: CompareRow) -> list[str]:
    fid, lat = row.fidelity, row.latency
    made = " ".join(x for x in (row.stage, row.format) if x) or "-"
    if fid is None:
        shown, against = "not recorded", "-"
    elif fid["reference"] is None:
        shown, against = "reference (FP32)", "-"
    else:
        shown = f"{fid['metric'].replace('_', '-')} {fid['value'] * 100:.3g}%"
        against = fid["reference"]
    if lat["evidence"] == "measured":
        (p50_lo, p50_hi), (p99_lo, p99_hi) = lat["p50_ci95"], lat["p99_ci95"]
        top = " (max)" if lat["p99_ci_reaches_max"] else ""
        p50 = f"{lat['p50_ms']:.3f} [{p50_lo:.3f}, {p50_hi:.3f}]"
        p99 = f"{lat['p99_ms']:.3f} [{p99_lo:.3f}, {p99_hi:.3f}{top}]"
        ticks = str(lat["n"])
    else:
        p50, p99, ticks = f"~{lat['estimated_ms']:.3f} (estimated)", "-", "-"
    return [f"`{row.artifact}`", made, shown, against, p50, p99, ticks, lat["evidence"]]


def write_outputs(result: CompareResult, out: Path) -> dict[str, str]:
    """``compare.md``, ``compare.json`` and (with matplotlib) ``compare.png`` in ``out``."""
    import json

    from edgekit.destinations import write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    files = {"table": "compare.md", "json": "compare.json"}
    variants = [r.variant() for r in result.rows]
    if any(v.error is not None for v in variants):
        try:
            from edgekit.destinations import save_figure
            from edgekit.run.plot import DPI
            from edgekit.run.plot_variants import variants_figure

            evidence = {r.latency["evidence"] for r in result.rows}
            xlabel = f"whole-tick p50 on {result.target} (ms, {'/'.join(sorted(evidence))})"
            fig = variants_figure(variants, f"variants on {result.target}", xlabel)
            save_figure(fig, out / "compare.png", DPI)
            files["plot"] = "compare.png"
        except ModuleNotFoundError as e:  # the plots extra is not installed: the table ships
            if (e.name or "").partition(".")[0] != "matplotlib":
                raise
    result.files = files
    write_text_atomic(out / "compare.md", markdown_table(result))
    write_text_atomic(out / "compare.json", json.dumps(result.to_dict(), indent=2) + "\n")
    return files
