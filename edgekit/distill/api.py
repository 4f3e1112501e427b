"""``edgekit distill``: teacher -> smaller student, with a fidelity and latency report.

Flow: PyTorch teacher -> observations (calibration/recorded file or explicit ``synthetic``;
the last part held out) -> training data (width/depth: every network's inputs captured by
running the teacher's loop programs; steps: encoder ``cond`` vectors) -> student (derived,
given, or a step-distilled denoiser) -> :func:`edgekit.distill.train.train` (DDP under
torchrun, checkpoints, resume) -> ONNX export of teacher and student -> whole-tick fidelity on
the held-out observations and latency, both on onnxruntime (what ships) -> gate -> an artifact
folder that ``quantize``, ``export`` and ``bench`` take as it is.

Checkpoints go to ``OUT.ckpt/`` next to the output folder (rank 0 writes them); it is removed
when the artifact is written, and ``resume=True`` continues from it. ``resume=True`` without a
checkpoint is an error; a new run over an existing checkpoint is refused unless ``force=True``,
which discards it (see :func:`check_resume`).

Each mode's student set-up and fidelity check live with its objective: :mod:`.outputs`
(width/depth students), :mod:`.steps` (the zoo's few-step samplers) and :mod:`.steps_declared`
(a declared tick's denoise block); :mod:`.measure` adds the size, FLOPs and latency.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import progress as show
from edgekit.artifacts import (
    Manifest,
    check_out_dir,
    sha256_file,
    staging_dir,
    write_manifest,
)
from edgekit.distill import dist as distmod
from edgekit.distill.checkpoint import check_resume, checkpoint_dir
from edgekit.distill.config import DistillConfig
from edgekit.distill.measure import facts, latency
from edgekit.distill.students import save_weights
from edgekit.distill.teacher import teacher_program, with_program
from edgekit.distill.train import TrainConfig, train
from edgekit.errors import BadInputError, InputSpecError, ModelLoadError
from edgekit.gates import Gate, Gated
from edgekit.loader import Source, TorchSource, source_info
from edgekit.loader.student import WEIGHTS, load_trainable, weights_entry
from edgekit.loop import Arrays, LoopProgram
from edgekit.models import build_program
from edgekit.reports.envelope import envelope, speed_warnings

SYNTHETIC_N = 128  # observations generated for `--data synthetic` (25% held out)
Progress = Callable[[str, int, int, dict[str, float]], None]  # phase, done, total, metrics


@dataclass
class DistillResult(Gated):
    """The student artifact (``out``, written only when its gate passed; None on torchrun
    ranks other than 0) and its report: fidelity vs the teacher and the latency check."""

    out: Path | None
    config: DistillConfig
    report: dict[str, Any] = field(default_factory=dict)
    written: bool = False

    @property
    def error(self) -> float:
        return float(self.report.get("fidelity", {}).get("headline", {}).get("value", 0.0))

    @property
    def metric(self) -> str:
        return str(self.report.get("fidelity", {}).get("headline", {}).get("metric", "rel_l2"))

    @property
    def gates(self) -> list[Gate]:
        budget = self.config.max_error
        if budget is None:
            return []
        fid = self.report.get("fidelity", {})
        value = self.error if budget.metric is None else fid.get("metrics", {}).get(budget.metric)
        why = "" if value is not None else f"not measured for this student: no {budget.metric}"
        gate = budget.gate(
            "distill", value, "student vs teacher on held-out observations, onnxruntime FP32",
            default=self.metric, why=why,
        )  # fmt: skip
        if not gate.passed:  # in the command's words
            miss = "is under" if budget.minimum else "exceeds"
            text = f"student {gate.metric} {'n/a' if value is None else f'{value:.4g}'} {miss}"
            gate = replace(gate, message=f"{text} --max-error {budget}" + (why and f" ({why})"))
        return [gate]

    @property
    def warnings(self) -> list[str]:
        """The student's tick measured slower than the teacher's (where speed was measured)."""
        return speed_warnings(self.report.get("latency"), "student", "teacher")

    def to_dict(self) -> dict[str, Any]:
        """The report (``checks.distill`` of the artifact) in the report envelope."""
        return envelope("distill", self.report, self.gates, warnings=self.warnings)


def distill(
    teacher: str | Source,
    out: str | Path,
    config: DistillConfig,
    data: str | Path | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
) -> DistillResult:
    """Distil ``teacher`` into a student artifact folder ``out``.

    ``data`` is a calibration/recording ``.npz`` (or folder) of observations, or the string
    ``"synthetic"`` to train on generated observations explicitly; None is an error.

    Returns a :class:`DistillResult`; a student that misses ``config.max_error`` did not pass
    (``result.passed``; exit 1 in the CLI) and was not written.

    Raises:
        BadInputError / InputSpecError / ModelLoadError: bad teacher, student, data or option.
    """
    out = Path(out)
    check_out_dir(out, force)
    check_resume(out, resume, force)
    ctx = distmod.init()
    try:
        if not ctx.is_main:  # one process reports: rank 0
            with show.use(None):
                return _distill(teacher, out, config, data, ctx, force, resume, progress)
        return _distill(teacher, out, config, data, ctx, force, resume, progress)
    finally:
        distmod.shutdown(ctx)


def _distill(
    teacher: str | Source,
    out: Path,
    config: DistillConfig,
    data: str | Path | None,
    ctx: distmod.DistContext,
    force: bool,
    resume: bool,
    progress: Progress | None,
) -> DistillResult:
    import torch

    t0 = time.perf_counter()
    source = load_trainable(teacher)
    if not isinstance(source, TorchSource):
        raise ModelLoadError(
            f"{source.ref}: the teacher must be a PyTorch model (zoo:..., FILE.py:factory, "
            ".pt2) to distil; ONNX networks have no trainable architecture"
        )
    if config.batch_size % ctx.world:
        raise BadInputError(
            f"--batch-size {config.batch_size} does not divide over {ctx.world} processes"
        )
    pname, pspec = teacher_program(source, config)
    source = with_program(source, pname, pspec)  # --loop overrides: the teacher as run
    program = build_program(pspec)
    with show.task("loading observations"):
        observations, data_info = _observations(data, program, config)
    split = max(1, round(len(observations) * (1 - config.holdout)))
    if split >= len(observations):
        raise InputSpecError(
            f"{data_info['source']}: {len(observations)} observation(s) leave none to hold out; "
            "give at least 2"
        )
    train_obs, holdout_obs = observations[:split], observations[split:]
    data_info.update(train_observations=len(train_obs), holdout_observations=len(holdout_obs))
    torch.manual_seed(config.seed)

    from edgekit.distill import outputs

    # held-out error on the progress display, when one is shown
    live = (progress is not None or show.sink() is not None) and ctx.is_main
    with show.task("building the student and the teacher's targets"):
        if config.mode == "steps":
            mode = _step_mode(pspec.name)
            if config.student is not None and pspec.name != "vla-flow":
                raise BadInputError(
                    f"--student with --denoise-steps: only a flow-matching VLA (vla-flow) "
                    f"trains a student of its own through the sampler; {pname!r} is {pspec.name!r}"
                )
            objective, student_src, how, extra = mode.setup(
                source, pname, pspec, train_obs, config, holdout_obs if live else []
            )
        else:
            objective, student_src, how, extra = outputs.setup(
                source, train_obs, config, holdout_obs if live else []
            )
    settings = _settings_hash(source, student_src, config, data_info)
    ckpt = checkpoint_dir(out)

    def on_step(done: int, metrics: dict[str, float]) -> None:
        held = metrics.get("holdout", held_out[-1] if held_out else None)
        if "holdout" in metrics:
            held_out.append(metrics["holdout"])
        info = f"loss {metrics.get('loss', 0):.4g}"
        if held is not None:
            info += f"  held-out {held * 100:.2f}%"
        bar.update(completed=done, info=info)
        if progress is not None:
            progress("train", done, config.steps, metrics)

    tcfg = TrainConfig(
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.learning_rate,
        warmup=config.warmup,
        ema=config.ema,
        grad_clip=config.grad_clip,
        weight_decay=config.weight_decay,
        seed=config.seed,
        checkpoint_every=config.checkpoint_every,
    )
    if not resume and ctx.is_main:  # --force: the earlier run's checkpoint is discarded now
        shutil.rmtree(ckpt, ignore_errors=True)
    t_train = time.perf_counter()
    held_out: list[float] = []
    with show.task("training", total=config.steps) as bar:
        result = train(
            objective,
            tcfg,
            ctx,
            ckpt_dir=ckpt,
            resume=resume,
            settings_hash=settings,
            progress=on_step,
            eval_every=max(1, config.steps // 20) if live else 0,
        )
    train_s = time.perf_counter() - t_train
    close = getattr(objective, "close", None)
    if close is not None:
        close()
    for net in student_src.networks.values():
        net.eval().requires_grad_(False)
    if not ctx.is_main:
        ctx.barrier()
        return DistillResult(None, config)
    try:
        report = {
            "mode": config.mode,
            "method": extra.pop("method"),
            "teacher": facts(source, pname),
            "student": {"how": how, **facts(student_src, None)},
            "data": {**data_info, **extra.pop("data", {})},
            "training": {
                **{k: v for k, v in config.training_settings().items() if k != "student"},
                "seconds": round(train_s, 2),
                "loss_first": float(np.mean(result.history[:10])),
                "loss_last": float(np.mean(result.history[-10:])),
                "loss_history": [round(v, 6) for v in result.history],
                "resumed_from": result.resumed_from,
                "processes": ctx.world,
                "backend": ctx.backend or "single process",
                "device": ctx.device,
                **extra.pop("training", {}),
            },
        }
        res = _finish(source, student_src, pname, holdout_obs, out, config, report, force)
        res.report["seconds"] = round(time.perf_counter() - t0, 2)
        return res
    finally:
        ctx.barrier()


def _step_mode(program: str) -> Any:
    """The step-distillation module for a teacher program: a declared tick's denoise block,
    the flow-matching VLA's expert, or the zoo's diffusion sampler (which refuses the rest)."""
    from edgekit.distill import steps, steps_declared, steps_flow

    return {"tick": steps_declared, steps_flow.FLOW: steps_flow}.get(program, steps)


# --- teacher program, observations, settings ------------------------------------------------


def _observations(
    data: str | Path | None, program: LoopProgram, config: DistillConfig
) -> tuple[list[Arrays], dict[str, Any]]:
    from edgekit.calib import load_calibration, synthesize_for_program
    from edgekit.validate import observation_bounds

    if data is None:
        raise InputSpecError(
            "--data is required: observations as a calibration/recording .npz (see "
            "calib_data/README.md), or `--data synthetic` to train on generated observations"
        )
    if str(data) == "synthetic":
        cset = synthesize_for_program(program, n=SYNTHETIC_N, seed=config.seed)
        return cset.observations(), {"source": "synthetic", "sha256": "synthetic"}
    path = Path(data)
    bounds = observation_bounds(None, program)  # a torch teacher: the program's own ranges
    cset = load_calibration(path, program.observation_spec(), bounds=bounds)
    digest = sha256_file(path) if path.is_file() else _folder_hash(path)
    return cset.observations(), {"source": str(path), "sha256": digest}


def _folder_hash(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.glob("*.npz")):
        h.update(f.name.encode() + sha256_file(f).encode())
    return h.hexdigest()


def _settings_hash(
    teacher: TorchSource, student: TorchSource, config: DistillConfig, data: dict[str, Any]
) -> str:
    from edgekit.loader import state_sha256

    payload = {
        "teacher": teacher.sha256,
        "student": state_sha256(student.module) if student.module is not None else "",
        "config": config.training_settings(),
        "data": data.get("sha256"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --- export, fidelity, gate, artifact ----------------------------------------------------------


def _finish(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    holdout: list[Arrays],
    out: Path,
    config: DistillConfig,
    report: dict[str, Any],
    force: bool,
) -> DistillResult:
    from edgekit.distill import outputs
    from edgekit.export.onnx import export_onnx
    from edgekit.runtimes import OrtRuntime, default_threads

    threads = default_threads()
    with tempfile.TemporaryDirectory(prefix="edgekit-distill-") as tmpdir:
        work = Path(tmpdir)
        with show.task("teacher"):
            t_exp = export_onnx(source, work / "teacher", check_parity=False)
        with show.task("student"):
            s_exp = export_onnx(student, work / "student", seed=config.seed)
        t_files = {n: t_exp.out / e["file"] for n, e in t_exp.manifest.files.items()}
        s_files = {n: s_exp.out / e["file"] for n, e in s_exp.manifest.files.items()}
        t_rt = OrtRuntime(t_files, threads=threads)
        s_rt = OrtRuntime(s_files, threads=threads)
        with show.task(f"fidelity, student vs teacher, on {len(holdout)} held-out observations"):
            if config.mode == "steps" and student.spec.program.name == "tick":
                fid = _step_mode("tick").fidelity(
                    source, student, pname, t_rt, s_rt, holdout, config.seed, config.denoise_block
                )
            elif config.mode == "steps":
                mode = _step_mode(student.spec.program.name)
                fid = mode.fidelity(source, student, pname, t_rt, s_rt, holdout, config.seed)
            else:
                fid = outputs.fidelity(source, t_rt, s_rt, holdout, config.seed)
        report["fidelity"] = fid
        report["latency"] = latency(source, student, pname, t_rt, s_rt, config, threads)
        budget = config.max_error
        metric = (budget and budget.metric) or fid["headline"]["metric"]
        gate = {"max_error": budget and budget.to_json(), "metric": metric}
        result = DistillResult(out, config, report)
        gate["passed"] = result.passed
        report["gate"] = gate
        if not result.passed:
            return result  # nothing written; the checkpoint stays
        with staging_dir(out, force) as tmp:
            files = {}
            for net, path in s_files.items():
                shutil.copy2(path, tmp / path.name)
                files[net] = {"file": path.name, "sha256": sha256_file(tmp / path.name)}
            save_weights(student, tmp / WEIGHTS)
            report["weights"] = weights_entry(tmp / WEIGHTS)
            manifest = Manifest(
                stage="distill",
                format="onnx",
                source=source_info(source),
                spec=student.spec,
                files=files,
                checks={"parity": s_exp.manifest.checks["parity"], "distill": report},
            )
            write_manifest(tmp, manifest)
    result.written = True
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return result
