"""``edgekit export --format tensorrt``: TensorRT-ready ONNX, op check, build plan, engines.

Everything before the engine runs anywhere (and in CI):

* **TensorRT-ready ONNX** per network: FP16 by converting the graph's float tensors to FP16
  while numerically fragile ops (normalisations, reductions, Softmax, exp/log/pow/erf,
  Softplus) stay FP32 with casts around them, graph inputs/outputs kept FP32; INT8 only as
  the explicit symmetric Q/DQ that ``edgekit quantize --target jetson-*`` writes (an artifact
  without Q/DQ is refused), its float remainder and Q/DQ scales FP16 as well; shapes fixed
  to the ones the loop program feeds, or an optimisation profile (min/opt/max) where a
  network is called with several shapes.
* **Op-support check** against the ONNX parser of the target's TensorRT version
  (:mod:`edgekit.export.trt_ops`), failing before the device with every offending node.
* **Build plan**: the exact ``trtexec`` line per network (strongly typed: the ONNX's types
  decide the precision) and the equivalent ``edgekit export ... --build``.

The engine build itself (``--build``) uses the ``tensorrt`` Python API (builder, ONNX parser,
strongly typed network, optimisation profiles, timing cache) and needs ``tensorrt`` and a CUDA
GPU (exit 3 otherwise; :mod:`edgekit.export.trt_build`). Engines are specific to the TensorRT
version and the GPU: the manifest records both.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.artifacts import Manifest, sha256_file, staging_dir, write_manifest
from edgekit.errors import BadInputError
from edgekit.export.trt_build import TrtUnsupportedError
from edgekit.gates import Gate, Gated
from edgekit.loader import Source, TorchSource, source_info

# Kept in FP32 in FP16 graphs: accumulations and transcendental ranges that FP16 gets wrong.
FP16_KEEP_FP32 = [
    "LayerNormalization", "GroupNormalization", "InstanceNormalization", "BatchNormalization",
    "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "Softmax", "LogSoftmax", "Pow",
    "Sqrt", "Reciprocal", "Exp", "Log", "Erf", "Softplus", "CumSum", "Range", "TopK",
]  # fmt: skip
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class TrtExportResult(Gated):
    """TensorRT-ready ONNX, its op check, fidelity (informative: the engine's own kernels
    decide) and build plan; no gate of its own."""

    out: Path
    manifest: Manifest
    report: dict[str, Any] = field(default_factory=dict)
    parity: list[Any] = field(default_factory=list)

    @property
    def gates(self) -> list[Gate]:
        return []

    def to_dict(self) -> dict[str, Any]:
        """The report (``checks.tensorrt`` of the artifact) in the report envelope."""
        from edgekit.reports.envelope import envelope

        body = {"format": "tensorrt", "out": str(self.out), **self.report}
        return envelope("export", body, self.gates)


def export_tensorrt(
    source: Source,
    out: str | Path,
    *,
    target: str | None = None,
    precision: str = "fp16",
    build: bool = False,
    force: bool = False,
    check_parity: bool = True,
    seed: int = 0,
) -> TrtExportResult:
    import onnx

    from edgekit.targets import get_target

    tgt = get_target(target or "jetson-orin-nx")
    if tgt.family != "jetson":
        raise BadInputError(f"--format tensorrt needs a jetson-* target, not {tgt.name!r}")
    if precision not in PRECISIONS or precision not in tgt.precisions:
        raise BadInputError(
            f"--precision {precision!r}: TensorRT export for {tgt.name} takes "
            f"{', '.join(p for p in PRECISIONS if p in tgt.precisions)}"
        )
    if build:
        from edgekit.export.trt_build import require_gpu

        require_gpu()
    out = Path(out)
    with staging_dir(out, force) as tmp:
        from edgekit.export.onnx import ensure_onnx

        files = ensure_onnx(source, tmp / ".src", tick_checks=1)
        has_qdq = {
            n: _has_qdq(onnx.load(str(p), load_external_data=False)) for n, p in files.items()
        }
        if precision == "int8" and not any(has_qdq.values()):
            raise BadInputError(
                f"{source.ref}: INT8 for TensorRT needs explicit symmetric Q/DQ; run `edgekit "
                f"quantize MODEL --target {tgt.name} --calib DATA --out DIR` and export that"
            )
        shapes = _recorded_shapes(source, files, seed)
        ready: dict[str, Path] = {}
        nets: dict[str, Any] = {}
        offences: list[str] = []
        for net, path in files.items():
            from edgekit.onnxfile import read_onnx

            model = read_onnx(path)
            static, profile = _fix_shapes(model, shapes.get(net, []))
            _refuse_unprofiled(model, profile, f"{source.ref}: network {net!r}")
            kept: list[str] = []
            # strongly typed: the ONNX's types are the engine's precision, so the float
            # remainder of an INT8 network (and its Q/DQ scales) goes FP16 too, else TensorRT
            # runs every unquantized layer in FP32
            remainder_fp16 = precision == "int8" or (precision == "fp16" and not has_qdq[net])
            if remainder_fp16:
                model, kept = _to_fp16(model)
            offences += [f"{net}/{o}" for o in _check(model, tgt.tensorrt or "10.3")]
            onnx.checker.check_model(model)
            dst = tmp / f"{net}.trt.onnx"
            onnx.save(model, str(dst))
            ready[net] = dst
            nets[net] = {
                "onnx": dst.name,
                "static_shapes": static,
                "profile": profile,
                "fp32_kept_ops": sorted(set(kept)),
                "explicit_qdq": has_qdq[net],
                "float_remainder": "fp16" if remainder_fp16 else "fp32",
            }
        if offences:
            raise TrtUnsupportedError(
                f"{len(offences)} node(s) TensorRT {tgt.tensorrt or '10.3'} cannot parse: "
                + "; ".join(offences[:12])
                + (" ..." if len(offences) > 12 else "")
            )
        import shutil

        shutil.rmtree(tmp / ".src", ignore_errors=True)
        fidelity = _fidelity(source, ready, seed) if check_parity else {"skipped": True}
        plan = build_plan(source, tgt.name, precision, nets)
        report: dict[str, Any] = {
            "target": tgt.name,
            "precision": precision,
            "networks": nets,
            "op_check": {"source": _ops_source(tgt.tensorrt or "10.3"), "passed": True},
            "fidelity": fidelity,
            "plan": plan,
            "built": False,
        }
        if build:
            from edgekit.export.trt_build import build_engines

            report.update(build_engines(ready, nets, tmp))
        manifest = Manifest(
            stage="export",
            format="tensorrt",
            source=source_info(source),
            spec=source.spec,
            files={n: {"file": p.name, "sha256": sha256_file(p)} for n, p in ready.items()},
            checks={"tensorrt": report},
        )
        (tmp / "build_engines.sh").write_text(build_script(plan["trtexec"]))
        write_manifest(tmp, manifest)
    return TrtExportResult(out, manifest, report)


def _ops_source(version: str) -> str:
    from edgekit.export.trt_ops import source

    return source(version)


def _check(model: Any, version: str) -> list[Any]:
    from edgekit.export.trt_ops import check

    return check(model, version)


def _refuse_unprofiled(model: Any, profile: dict[str, Any], where: str) -> None:
    """TensorRT needs an optimisation profile for every input with a dynamic dimension."""
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        dynamic = [d.dim_param or "?" for d in dims if d.dim_value <= 0]
        if dynamic and inp.name not in profile:
            raise BadInputError(
                f"{where}: input {inp.name!r} has dynamic dimension(s) {', '.join(dynamic)} "
                "and no call of the loop program feeds it, so TensorRT gets no optimisation "
                "profile; export it with fixed shapes or call it from the model's tick"
            )


def _has_qdq(model: Any) -> bool:
    return any(n.op_type == "DequantizeLinear" for n in model.graph.node)


def _recorded_shapes(
    source: Source, files: dict[str, Path], seed: int
) -> dict[str, list[dict[str, tuple[int, ...]]]]:
    """Input shapes of every call each network gets, over every loop program of the model."""
    import numpy as np

    from edgekit.estimate.roofline import ShapeRecorder
    from edgekit.loop import TickContext
    from edgekit.models import build_program
    from edgekit.runtimes import OrtRuntime

    rec = ShapeRecorder(OrtRuntime(files, threads=1))
    for pspec in (source.spec.programs or {"default": source.spec.program}).values():
        program = build_program(pspec)
        program.reset(seed)
        program.tick(TickContext(rec), program.sample_observation(np.random.default_rng(seed)))
    return rec.shapes


def _fix_shapes(
    model: Any, calls: list[dict[str, tuple[int, ...]]]
) -> tuple[bool, dict[str, dict[str, list[int]]]]:
    """Fix the inputs' dims when every call uses one shape; else an optimisation profile."""
    profile: dict[str, dict[str, list[int]]] = {}
    if not calls:
        return False, profile
    distinct = {tuple(sorted(c.items())) for c in calls}
    for inp in model.graph.input:
        seen = [tuple(c[inp.name]) for c in calls if inp.name in c]
        if not seen:
            continue
        opt = Counter(seen).most_common(1)[0][0]
        profile[inp.name] = {
            "min": [min(s[i] for s in seen) for i in range(len(opt))],
            "opt": list(opt),
            "max": [max(s[i] for s in seen) for i in range(len(opt))],
        }
        if len(distinct) == 1:
            for d, size in zip(inp.type.tensor_type.shape.dim, opt, strict=False):
                d.ClearField("dim_param")
                d.dim_value = int(size)
    return len(distinct) == 1, profile


def _to_fp16(model: Any) -> tuple[Any, list[str]]:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    kept = [n.op_type for n in model.graph.node if n.op_type in FP16_KEEP_FP32]
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=list(DEFAULT_OP_BLOCK_LIST) + FP16_KEEP_FP32,
    )
    _toposort(converted)  # the converter appends its input Casts last; parsers read in order
    return converted, kept


def _toposort(model: Any) -> None:
    """Order the graph's nodes so every input is produced before it is read (in place)."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise BadInputError("graph has a cycle or an input no node produces")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def _fidelity(source: Source, ready: dict[str, Path], seed: int) -> dict[str, Any]:
    """Whole tick of the TensorRT-ready ONNX on onnxruntime CPU vs the source, when onnxruntime
    has CPU kernels for every op at its precision (FP16 Conv has none): else said why."""
    from edgekit.calib import synthesize_for_program
    from edgekit.loop.fidelity import tick_fidelity, worst_error
    from edgekit.models import build_program
    from edgekit.runtimes import OrtRuntime, TorchRuntime

    program = build_program(source.spec.program)
    obs = synthesize_for_program(program, 4, seed=seed).observations()
    if isinstance(source, TorchSource):
        ref: Any = TorchRuntime(source.networks, source.spec, 1)
    else:
        ref = OrtRuntime(source.files, threads=1)
    try:
        # unfused: the exact arithmetic of explicit Q/DQ, as TensorRT's int32 kernels compute it
        # (a CPU's fused kernels may saturate where TensorRT's do not)
        got = OrtRuntime(ready, threads=1, optimize=False)
        rows = tick_fidelity({"default": program}, ref, got, obs, seed)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return {"checked": False, "why": f"onnxruntime CPU cannot run it: {first}"}
    return {
        "checked": True,
        "measured_on": "onnxruntime CPU, Q/DQ unfused (TensorRT's own kernels are checked on the "
        "device)",
        "ticks": len(obs),
        "worst_rel_l2": worst_error(rows),
        "rows": [r.to_dict() for r in rows],
    }


def _shape_arg(shape: list[int]) -> str:
    return "x".join(str(s) for s in shape)


def build_plan(source: Source, target: str, precision: str, nets: dict[str, Any]) -> dict[str, Any]:
    """The exact commands that build the engines on the device."""
    lines = []
    for net, info in nets.items():
        args = [
            "trtexec",
            f"--onnx={info['onnx']}",
            f"--saveEngine={net}.engine",
            "--timingCacheFile=timing.cache",
            "--skipInference",
            "--stronglyTyped",  # the ONNX's FP32/FP16/Q/DQ types decide precision, as --build
        ]
        prof = info["profile"]
        if prof and not info["static_shapes"]:
            for key, flag in (
                ("min", "--minShapes"),
                ("opt", "--optShapes"),
                ("max", "--maxShapes"),
            ):
                spec = ",".join(f"{n}:{_shape_arg(p[key])}" for n, p in prof.items())
                args.append(f"{flag}={spec}")
        lines.append(shlex.join(args))
    return {
        "trtexec": lines,
        "edgekit": f"edgekit export {shlex.quote(source.ref)} --format tensorrt --target "
        f"{target} --precision {precision} --build --out OUT",
        "note": "run on the Jetson with the TensorRT version that will run the engines",
    }


def build_script(trtexec_lines: list[str]) -> str:
    """``build_engines.sh``: the plan's trtexec lines with JetPack's trtexec location."""
    lines = [line.replace("trtexec ", '"$TRTEXEC" ', 1) for line in trtexec_lines]
    return (
        "#!/bin/sh\n# Build the TensorRT engines on the Jetson (same TensorRT as deployed).\n"
        "# JetPack installs trtexec in /usr/src/tensorrt/bin (not on PATH); TRTEXEC overrides.\n"
        'set -e\ncd "$(dirname "$0")"\n'
        'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"\n'
        + "\n".join(lines)
        + "\n"
    )
