"""``edgekit export --format qnn``: QNN context binaries for a Qualcomm HTP target.

Input: an artifact quantized for a Qualcomm target (``edgekit quantize --target qcs6490 ...``:
QNN-flavoured QDQ). Each network is compiled by onnxruntime-qnn for the target's HTP
architecture and SoC into an EPContext ONNX + ``.bin`` context binary, which deploys without
recompiling on the device (:func:`compile_context`), loaded back and
compared with its QDQ model. The whole tick is then run on the HTP simulator from the context
binaries and compared with FP32 (the artifact's own source); every node that falls back to the
CPU is reported. ``strict`` fails on a fallback or a fidelity miss (exit 1). The simulator's
time is never reported as device latency.

Output folder: ``{network}_ctx.onnx`` + ``.bin`` per network (what ships), ``qdq/`` (the QDQ
networks they were compiled from, for estimates and CPU runs) and ``edgekit.json`` (format
``qnn``) with the QNN SDK / onnxruntime / onnxruntime-qnn versions the device needs.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import progress
from edgekit.artifacts import Discard, Manifest, sha256_file, staging_dir, write_manifest
from edgekit.errors import BadInputError
from edgekit.gates import Gate, Gated, upper_bound
from edgekit.loader import OnnxSource, Source, TorchSource, load_origin, source_info
from edgekit.loop import Arrays
from edgekit.onnxfile import onnx_bytes
from edgekit.runtimes.htp import EP_NAME, HtpRuntime, htp_provider_options, session, versions

FIDELITY_TICKS = 6


@dataclass
class QnnExportResult(Gated):
    """The QNN context binaries (``out``; not written when ``--strict`` failed) and the report:
    placement, CPU fallback, whole-tick fidelity on the HTP simulator."""

    out: Path
    manifest: Manifest
    report: dict[str, Any] = field(default_factory=dict)
    parity: list[Any] = field(default_factory=list)  # ExportResult-compatible for the CLI
    written: bool = True

    @property
    def gates(self) -> list[Gate]:
        fid, strict = self.report["fidelity"], self.report["strict"]
        gates = []
        if fid["max_error"] is not None:
            gates.append(upper_bound(
                "export", "fidelity", "rel_l2", fid["worst_rel_l2"], fid["max_error"],
                f"{fid['measured_on']} vs FP32 {fid['reference']}", target=self.report["target"],
                message=f"whole-tick rel-L2 {fid['worst_rel_l2']:.4f} > --max-error "
                f"{fid['max_error']:g} on the HTP simulator",
            ))  # fmt: skip
        if strict["enabled"]:
            nodes = sum(len(v) for v in self.report["cpu_fallback"].values())
            gates.append(Gate(
                id="placement.export", kind="placement", name="export: --strict (all on HTP)",
                stage="export", metric="cpu_fallback_nodes", value=float(nodes), limit=0.0,
                unit="nodes", status="failed" if strict["problems"] else "passed",
                evidence="measured", method="onnxruntime-qnn placement of every node",
                message=f"--strict: {'; '.join(strict['problems'])}",
                target=self.report["target"],
            ))  # fmt: skip
        return gates

    def to_dict(self) -> dict[str, Any]:
        """The report (``checks.qnn`` of the artifact) in the report envelope."""
        from edgekit.reports.envelope import envelope

        body = {"format": "qnn", "out": str(self.out), **self.report}
        return envelope("export", body, self.gates)


def export_qnn(
    source: Source,
    out: str | Path,
    *,
    target: str | None = None,
    strict: bool = False,
    max_error: float | None = None,
    force: bool = False,
    check_parity: bool = True,
    seed: int = 0,
) -> QnnExportResult:
    from edgekit.calib import synthesize_for_program
    from edgekit.loop.fidelity import tick_fidelity, worst_error
    from edgekit.models import build_program

    out = Path(out)
    q_target = _quantized_for(source)
    tname, opts = htp_provider_options(target or q_target)
    assert isinstance(source, OnnxSource)
    notes = []
    if tname != q_target:
        notes.append(f"quantized for {q_target}, compiled for {tname} (same QNN QDQ scheme)")
    with staging_dir(out, force) as tmp, tempfile.TemporaryDirectory() as work:
        (tmp / "qdq").mkdir()
        contexts: dict[str, dict[str, Any]] = {}
        ctx_files: dict[str, Path] = {}
        for net, path in source.files.items():
            qdq = tmp / "qdq" / f"{net}.onnx"
            shutil.copy2(path, qdq)
            with progress.task(f"compiling {net} into an HTP context binary ({tname})"):
                info = compile_context(qdq, Path(work) / net, tname)
            ctx = Path(info["context_model"])
            for f in [ctx, *map(Path, info["context_binaries"])]:
                shutil.move(str(f), tmp / f.name)
            ctx_files[net] = tmp / ctx.name
            info["context_model"] = ctx.name
            info["context_binaries"] = [Path(b).name for b in info["context_binaries"]]
            contexts[net] = info
        with progress.task(f"loading {len(ctx_files)} context binary(ies) on the HTP"):
            htp = HtpRuntime(ctx_files, tname)
        placement = htp.placement()
        fallbacks = {n: p.get("cpu_fallback", []) for n, p in placement.items()}
        program = build_program(source.spec.program)
        obs = synthesize_for_program(program, FIDELITY_TICKS, seed=seed).observations()
        reference, ref_name = _reference(source)
        programs = {"default": program}
        rows = []
        if check_parity:
            with progress.task(f"fidelity vs {ref_name} on {len(obs)} ticks (HTP simulator)"):
                rows = tick_fidelity(programs, reference, htp, obs, seed)
        err = worst_error(rows)
        report = {
            "target": tname,
            "htp_arch": int(opts["htp_arch"]),
            "soc_model": int(opts.get("soc_model", 0)),
            "contexts": contexts,
            "placement": placement,
            "cpu_fallback": fallbacks,
            "fidelity": {
                "reference": ref_name,
                "measured_on": "onnxruntime-qnn HTP simulator, from the context binaries",
                "ticks": len(obs),
                "observations": "synthetic (edgekit.calib.synthesize_for_program)",
                "worst_rel_l2": err,
                "max_error": max_error,
                "rows": [r.to_dict() for r in rows],
            },
            "latency": {"measured": False, "why": "the HTP simulator's time is not latency"},
            "device_needs": htp.settings(),
            "notes": notes,
        }
        problems = [f"{n}: {len(f)} node(s) on CPU {f[:5]}" for n, f in fallbacks.items() if f]
        if max_error is not None and err > max_error:
            problems.append(f"whole-tick rel-L2 {err:.4f} > --max-error {max_error}")
        report["strict"] = {"enabled": strict, "problems": problems, "passed": not problems}
        files = {n: {"file": p.name, "sha256": sha256_file(p)} for n, p in ctx_files.items()}
        report["qdq_files"] = {
            n: {"file": f"qdq/{n}.onnx", "sha256": sha256_file(tmp / "qdq" / f"{n}.onnx")}
            for n in ctx_files
        }
        report["binaries"] = {
            b: sha256_file(tmp / b) for c in contexts.values() for b in c["context_binaries"]
        }
        manifest = Manifest(
            stage="export",
            format="qnn",
            source=source_info(source),
            spec=source.spec,
            files=files,
            checks={"qnn": report},
        )
        if strict and problems:
            raise Discard  # --strict: nothing written
        write_manifest(tmp, manifest)
    return QnnExportResult(out, manifest, report, written=not (strict and problems))


def _quantized_for(source: Source) -> str:
    """The Qualcomm target the artifact was quantized for; one-line errors otherwise."""
    from edgekit.artifacts import load_artifact
    from edgekit.targets import get_target

    if isinstance(source, TorchSource) or not Path(source.ref).is_dir():
        raise BadInputError(
            f"{source.ref}: --format qnn compiles an HTP-quantized artifact; run `edgekit "
            "quantize MODEL --target qcs6490 --calib DATA --out DIR` first"
        )
    q = load_artifact(source.ref, verify=False).manifest.checks.get("quantize", {})
    target = q.get("target")
    if target is None or get_target(target).family != "qualcomm":
        raise BadInputError(
            f"{source.ref}: not quantized for a Qualcomm HTP target (target: {target}); "
            "quantize it with --target qcs6490|qcs8550|sd8gen3 first"
        )
    return str(target)


def _reference(source: OnnxSource) -> tuple[Any, str]:
    """FP32 of what the artifact was quantized from; else the QDQ model on the CPU."""
    from edgekit.runtimes import OrtRuntime, TorchRuntime

    origin = source.origin or {}
    try:
        ref = load_origin(origin, "the FP32 reference")
    except Exception:
        return OrtRuntime(source.files, threads=1), "the QDQ model on onnxruntime CPU"
    if isinstance(ref, TorchSource):
        return TorchRuntime(ref.networks, ref.spec, 1), f"FP32 PyTorch {ref.ref}"
    return OrtRuntime(ref.files, threads=1), f"FP32 ONNX {ref.ref}"


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
        session(qdq_path, opts, 1, config=extra)
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
        "sizes": {
            ctx_path.name: onnx_bytes(ctx_path),
            **{(out_dir / b).name: (out_dir / b).stat().st_size for b in bins},
        },
        "ep_sdk_version": attrs[0].get("ep_sdk_version", b"").decode() if attrs else "",
        "ep_compatibility": meta.get(f"ep_compatibility_info.{EP_NAME}", ""),
        "context_placement": back.placement()["ctx"],
        "max_abs_diff": diff,
        **versions(),
    }
