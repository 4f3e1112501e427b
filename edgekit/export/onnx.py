"""``edgekit export --format onnx``: torch.onnx export, checker, shape inference, parity.

Multi-network models export one ONNX file per network. Parity runs the same sample inputs
through PyTorch and through an onnxruntime session *with graph optimizations on* (some fusions
have miscomputed in the past, so the optimized session is what must match), per network and
over whole control ticks. ONNX inputs (a file, or an earlier artifact) are re-checked: the
optimized session must match the unoptimized one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit import progress
from edgekit.artifacts import Discard, Manifest, sha256_file, staging_dir, write_manifest
from edgekit.errors import ExportError, ParityError, debug
from edgekit.gates import Gate, Gated
from edgekit.loader import OnnxSource, Source, TorchSource, source_info
from edgekit.loop.compare import ParityRow, compare, failure_line, tick_parity
from edgekit.models import build_program
from edgekit.onnxfile import read_onnx
from edgekit.runtimes import OrtRuntime, TorchRuntime, default_threads
from edgekit.spec import NetworkSpec

ONNX_OPSET = 20


@dataclass
class ExportResult(Gated):
    """The ONNX artifact (``out``, written only when parity passed), its manifest and the
    parity rows (per network and over whole ticks)."""

    out: Path
    manifest: Manifest
    parity: list[ParityRow] = field(default_factory=list)
    written: bool = True
    checked: bool = True

    @property
    def gates(self) -> list[Gate]:
        if not self.checked:
            return []
        worst = max((r.max_abs / r.limit for r in self.parity if r.limit), default=0.0)
        ok = all(r.ok for r in self.parity)
        line = failure_line(self.parity, f"parity of {self.manifest.source.get('ref', self.out)}")
        return [
            Gate(
                id="fidelity.export", kind="fidelity", name="export: ONNX parity",
                stage="export", metric="max_abs / tolerance", value=worst, limit=1.0,
                unit="ratio", status="passed" if ok else "failed", evidence="measured",
                method="each output vs the reference, per network and over whole ticks",
                message=line or "",
            )
        ]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        from edgekit.reports.envelope import envelope

        body = {"format": "onnx", "out": str(self.out), "manifest": self.manifest.to_dict()}
        return envelope("export", body, self.gates)


def ensure_onnx(source: Source, work: Path, tick_checks: int = 0) -> dict[str, Path]:
    """The ONNX file of every network of ``source``: its own files for ONNX sources and
    artifacts, else an export into ``work`` (parity checked on ``tick_checks`` whole ticks)."""
    if isinstance(source, OnnxSource):
        return dict(source.files)
    res = export_onnx(source, work, tick_checks=tick_checks)
    if not res.passed:  # a model that does not export faithfully cannot go further
        raise ParityError(res.failed[0].message)
    return {n: res.out / e["file"] for n, e in res.manifest.files.items()}


def export_onnx(
    source: Source,
    out: str | Path,
    *,
    force: bool = False,
    check_parity: bool = True,
    tick_checks: int = 3,
    seed: int = 0,
) -> ExportResult:
    """Export ``source`` to ONNX in the artifact folder ``out`` (written atomically).

    An output beyond the model's tolerance fails the parity gate (``result.passed``; exit 1
    in the CLI) and nothing is written.

    Raises:
        ExportError: the exporter or the ONNX checker failed.
    """
    out = Path(out)
    threads = default_threads()
    with staging_dir(out, force) as tmp:
        if isinstance(source, TorchSource):
            files = {}
            for n in source.spec.networks:
                with progress.task(f"exporting {n.name} to ONNX"):
                    files[n.name] = _export_network(source, n, tmp)
        else:
            files = _copy_onnx(source, tmp)
        ort_rt = OrtRuntime(files, threads=threads, optimize=True)
        rows: list[ParityRow] = []
        if check_parity:
            rows = _parity(source, ort_rt, files, threads, seed, tick_checks)
        manifest = Manifest(
            stage="export",
            format="onnx",
            source=source_info(source),
            spec=source.spec,
            files={n: {"file": p.name, "sha256": sha256_file(p)} for n, p in files.items()},
            checks={
                "parity": {
                    "reference": "torch" if isinstance(source, TorchSource) else "ort-unoptimized",
                    "runtime": "onnxruntime, graph optimizations on",
                    "rows": [r.to_dict() for r in rows],
                    "passed": all(r.ok for r in rows),
                }
                if check_parity
                else {"skipped": True}
            },
        )
        result = ExportResult(out, manifest, rows, written=False, checked=check_parity)
        if not result.passed:
            raise Discard  # nothing written
        write_manifest(tmp, manifest)
        result.written = True
    return result


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _export_failure(e: Exception) -> str:
    """The one line that says why the exporter failed (its message is a page of advice)."""
    text = _ANSI.sub("", str(e)).strip()  # the exporter colours its messages
    if not text:
        return type(e).__name__
    summary = text.partition("## Exception summary")[2].strip()
    if not summary:
        return text.splitlines()[0]
    line = re.sub(r"^<class '(?:[\w.]+\.)?(\w+)'>", r"\1", summary.splitlines()[0])
    at = re.search(r'raised this error:\s+File "([^"]+)", line (\d+)', summary)
    return f"{line} (at {Path(at[1]).name}:{at[2]})" if at else line


def _export_network(source: TorchSource, net: NetworkSpec, folder: Path) -> Path:
    import onnx
    import torch

    module = source.networks[net.name]
    feeds = source.sample_inputs.get(net.name) or net.sample_inputs(0)
    args = tuple(torch.from_numpy(feeds[n]) for n in net.input_names)
    dynamic = tuple({i: d for i, d in t.dynamic_axes.items()} or None for t in net.inputs)
    path = folder / f"{net.name}.onnx"
    big = sum(p.numel() * p.element_size() for p in module.parameters()) > 1.8e9
    log = io.StringIO()
    try:
        with _quiet_exporter(log):
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=net.input_names,
                output_names=net.output_names,
                dynamic_shapes=dynamic if any(d is not None for d in dynamic) else None,
                external_data=big,
                optimize=True,
            )
    except Exception as e:
        # Writing the file failed (full disk...): the destination's fault, not the model's;
        # the staging folder turns it into a --out error.
        if isinstance(e, OSError):
            raise
        if isinstance(e.__cause__, OSError):
            raise e.__cause__ from None
        first = _export_failure(e)
        saved = _save_log(net.name, log.getvalue(), e)
        raise ExportError(
            f"{source.ref}: torch.onnx.export failed for network {net.name!r}: {first}"
            + _likely_cause(e)
            + f" (full log: {saved})"
        ) from e
    try:
        onnx.checker.check_model(str(path), full_check=True)
        if not big:
            onnx.shape_inference.infer_shapes_path(str(path), str(path), strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        first = str(e).strip().splitlines()[0]
        raise ExportError(
            f"{source.ref}: network {net.name!r} fails the ONNX checker: {first}"
        ) from None
    return path


_DATA_DEPENDENT = (
    "GuardOnDataDependentSymNode", "data-dependent", "data dependent",
    "Dynamic control flow", "UnsupportedAliasMutationException", "generator",
)  # fmt: skip


def _likely_cause(e: BaseException) -> str:
    """What usually makes torch.export fail on a robot policy, and what to do about it."""
    text = " ".join(_ANSI.sub("", str(x)) for x in (e, e.__cause__, e.__context__) if x)
    if any(k in text for k in _DATA_DEPENDENT):
        return (
            "; likely cause: data-dependent control flow inside forward (a loop or branch "
            "on tensor values, .item(), a sampler/scheduler or random draws): export the "
            "networks alone and declare the loop as a tick (UserModel(networks=..., tick=...), "
            "see docs/your-own-policy.md)"
        )
    return ""


def _save_log(network: str, captured: str, e: BaseException) -> Path:
    """The exporter's own output and the full traceback, for the user (not on stderr)."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix=f"edgekit-export-{network}-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(captured)
        f.write("\n".join(traceback.format_exception(e)))
    return Path(name)


@contextlib.contextmanager
def _quiet_exporter(log: io.StringIO | None = None) -> Any:
    """The dynamo exporter prints progress, warnings and (on failure) logged tracebacks and
    graph dumps meant for its developers; a failure is reported as one ExportError line and
    what it printed goes to ``log`` (saved to a file the error names).
    ``--debug`` lets its logging and stderr through."""
    sink = log if log is not None else io.StringIO()
    if debug():
        with contextlib.redirect_stdout(sink):
            yield
        return
    # logging.disable, not logger levels: torch configures levels on many child loggers
    # (torch.fx.experimental.symbolic_shapes, torch._dynamo...) that would bypass a parent's
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _copy_onnx(source: OnnxSource, folder: Path) -> dict[str, Path]:
    import onnx

    files = {}
    for name, src in source.files.items():
        dst = folder / f"{name}.onnx"
        model = read_onnx(Path(src))  # re-validates external data and the checker
        if model.ByteSize() < 1.8e9:
            onnx.save(model, str(dst))
        else:
            onnx.save(model, str(dst), save_as_external_data=True, location=f"{name}.onnx.data")
        files[name] = dst
    return files


def _parity(
    source: Source,
    ort_rt: OrtRuntime,
    files: dict[str, Path],
    threads: int,
    seed: int,
    tick_checks: int,
) -> list[ParityRow]:
    spec = source.spec
    if isinstance(source, TorchSource):
        ref: Any = TorchRuntime(source.networks, spec, threads)
    else:
        ref = OrtRuntime(files, threads=threads, optimize=False)
    rows: list[ParityRow] = []
    ticks = tick_checks and isinstance(source, TorchSource) and spec.program.name != "single-call"
    what = "PyTorch" if isinstance(source, TorchSource) else "unoptimized onnxruntime"
    with progress.task(f"parity vs {what}", total=len(spec.networks) + bool(ticks)) as task:
        for net in spec.networks:
            feeds = source.sample_inputs.get(net.name) or net.sample_inputs(seed)
            rows += compare(
                "network",
                net.name,
                ref.run(net.name, feeds),
                ort_rt.run(net.name, feeds),
                spec.tolerance,
            )
            task.advance()
        if ticks:
            program = build_program(spec.program)
            rows += tick_parity(program, ref, ort_rt, spec.tick_tolerance, ticks=tick_checks)
            task.advance()
    return rows
