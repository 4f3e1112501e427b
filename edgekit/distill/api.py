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
"""

from __future__ import annotations

import copy
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

from edgekit.artifacts import (
    Manifest,
    check_out_dir,
    sha256_file,
    staging_dir,
    write_manifest,
)
from edgekit.distill import dist as distmod
from edgekit.distill.config import DistillConfig
from edgekit.distill.students import make_student
from edgekit.distill.train import Objective, TrainConfig, train
from edgekit.errors import BadInputError, GateFailed, InputSpecError, ModelLoadError
from edgekit.loader import Source, TorchSource, load, source_info
from edgekit.loop import Arrays, LoopProgram, TickContext
from edgekit.models import build_program
from edgekit.spec import ProgramSpec

SYNTHETIC_N = 128  # observations generated for `--data synthetic` (25% held out)
Progress = Callable[[str, int, int, dict[str, float]], None]  # phase, done, total, metrics


@dataclass
class DistillResult:
    out: Path | None  # None on ranks other than 0
    config: DistillConfig
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> float:
        return float(self.report.get("fidelity", {}).get("headline", {}).get("value", 0.0))

    @property
    def passed(self) -> bool:
        return self.config.max_error is None or self.error <= self.config.max_error


class DistillGateFailed(GateFailed):
    """The student misses ``--max-error``; no artifact was written. Carries the report."""

    def __init__(self, message: str, result: DistillResult) -> None:
        super().__init__(message)
        self.result = result


def checkpoint_dir(out: Path) -> Path:
    return out.parent / f"{out.name}.ckpt"


def check_resume(out: Path, resume: bool, force: bool) -> None:
    """The resume rule, checked before any work: ``resume`` needs a checkpoint of an earlier run
    at ``OUT.ckpt/``; without ``resume`` an existing checkpoint is refused unless ``force``
    (which discards it when training starts), so an interrupted run is never overwritten by
    accident.

    Raises:
        BadInputError: ``resume`` without a checkpoint, or a checkpoint without
            ``resume``/``force``.
    """
    from edgekit.distill import checkpoint

    ckpt = checkpoint_dir(Path(out))
    if resume and not checkpoint.exists(ckpt):
        raise BadInputError(
            f"--resume: no checkpoint at {ckpt} to continue from; drop --resume to start afresh"
        )
    if not resume and ckpt.exists() and not force:
        raise BadInputError(
            f"{ckpt}: a checkpoint of an earlier, unfinished run exists; pass --resume to "
            "continue it, or --force to discard it and start over"
        )


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

    Raises:
        DistillGateFailed: fidelity misses ``config.max_error`` (exit 1); nothing is written.
        BadInputError / InputSpecError / ModelLoadError: bad teacher, student, data or option.
    """
    out = Path(out)
    check_out_dir(out, force)
    check_resume(out, resume, force)
    ctx = distmod.init()
    try:
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
    source = load(teacher) if isinstance(teacher, str) else teacher
    if not isinstance(source, TorchSource):
        raise ModelLoadError(
            f"{source.ref}: the teacher must be a PyTorch model (zoo:..., FILE.py:factory, "
            ".pt2) to distil; ONNX networks have no trainable architecture"
        )
    if config.batch_size % ctx.world:
        raise BadInputError(
            f"--batch-size {config.batch_size} does not divide over {ctx.world} processes"
        )
    pname, pspec = _teacher_program(source, config)
    program = build_program(pspec)
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

    live = progress is not None and ctx.is_main  # held-out error on the progress bar
    if config.mode == "steps":
        objective, student_src, how, extra = _steps_setup(
            source, pname, pspec, train_obs, config, holdout_obs if live else []
        )
    else:
        objective, student_src, how, extra = _outputs_setup(
            source, train_obs, config, holdout_obs if live else []
        )
    settings = _settings_hash(source, student_src, config, data_info)
    ckpt = checkpoint_dir(out)

    def on_step(done: int, metrics: dict[str, float]) -> None:
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
            "teacher": _facts(source, pname),
            "student": {"how": how, **_facts(student_src, None)},
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


# --- set-up per mode -------------------------------------------------------------------------


def _teacher_program(source: TorchSource, config: DistillConfig) -> tuple[str, ProgramSpec]:
    programs = source.spec.programs or {"default": source.spec.program}
    if config.program is None:
        for name, p in programs.items():
            if p == source.spec.program:
                return name, p
        return "default", source.spec.program
    if config.program not in programs:
        raise BadInputError(
            f"--program {config.program!r}: {source.ref} has programs {sorted(programs)}"
        )
    return config.program, programs[config.program]


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


def _outputs_setup(
    source: TorchSource,
    train_obs: list[Arrays],
    config: DistillConfig,
    holdout_obs: list[Arrays],
) -> tuple[Objective, TorchSource, str, dict[str, Any]]:
    from edgekit.distill.outputs import OutputObjective, pool_feeds
    from edgekit.loop.capture import capture
    from edgekit.runtimes import TorchRuntime

    student = make_student(source, config)
    programs = {n: build_program(p) for n, p in (source.spec.programs or {}).items()}
    programs = programs or {"default": build_program(source.spec.program)}
    runtime = TorchRuntime(source.networks, source.spec, threads=_threads())
    feeds, ran = capture(programs, runtime, train_obs, config.max_feeds, config.seed)
    if not feeds:
        raise InputSpecError(
            "the observations fit no loop program of the teacher: check their names/shapes"
        )
    specs = {n.name: n for n in source.spec.networks}
    pools = pool_feeds(feeds, specs, config.seed)
    objective = OutputObjective(
        source.networks,
        student.source.networks,
        specs,
        pools,
        jitter=config.jitter,
        feature_weight=config.feature_weight,
        seed=config.seed,
    )
    if holdout_obs:
        held, _ = capture(programs, runtime, holdout_obs, 32, config.seed)
        objective.holdout = {
            n: {k: v[:256] for k, v in rows.items()}
            for n, rows in pool_feeds(held, specs, config.seed).items()
            if n in pools
        }
    untrained = sorted(set(specs) - set(pools))
    if untrained:
        raise InputSpecError(
            f"the observations reach no program that calls network(s) {untrained}; they "
            "cannot be distilled"
        )
    rows = {n: len(next(iter(p.values()))) for n, p in pools.items()}
    return (
        objective,
        student.source,
        student.how,
        {
            "method": "output matching (normalised MSE per float output) + FitNets hint on "
            "the input of the last Linear; inputs captured from the teacher's loop programs "
            "with mixup + jitter; AdamW, warm-up + cosine, EMA, grad clipping",
            "data": {"programs": ran, "pool_rows": rows},
            "training": {"feature_hints": objective.hints},
        },
    )


def _steps_setup(
    source: TorchSource,
    pname: str,
    pspec: ProgramSpec,
    train_obs: list[Arrays],
    config: DistillConfig,
    holdout_obs: list[Arrays],
) -> tuple[Objective, TorchSource, str, dict[str, Any]]:
    import torch

    from edgekit.distill import steps

    if pspec.name != steps.SAMPLER or "denoiser" not in source.networks:
        raise BadInputError(
            f"--denoise-steps: {source.ref} program {pname!r} is {pspec.name!r}; step "
            f"distillation needs a {steps.SAMPLER!r} program that repeats a denoiser"
        )
    k = int(pspec.params["num_inference_steps"])
    n = int(config.denoise_steps or 0)
    if n >= k:
        raise BadInputError(f"--denoise-steps {n}: the teacher ({pname}) already makes {k} calls")
    teacher_program = build_program(pspec)
    conds = steps.encode(source.networks["encoder"], train_obs, teacher_program)
    objective = steps.StepObjective(
        source.networks["denoiser"], conds, dict(pspec.params), n, k, config.jitter
    )
    if holdout_obs:
        cond = steps.encode(source.networks["encoder"], holdout_obs, teacher_program)
        gen = torch.Generator().manual_seed(config.seed + 1)
        x = torch.randn((len(cond), *objective.shape), generator=gen)
        objective.holdout = {"x": x, "cond": cond}
    sprog = ProgramSpec(steps.SAMPLER, steps.student_params(dict(pspec.params), n, k), pspec.hz)
    name = f"distilled{n}"
    spec = replace(source.spec, program=sprog, programs={name: sprog})
    container = copy.copy(source.module)
    networks = {"encoder": source.networks["encoder"], "denoiser": objective.student}
    student = TorchSource(f"{source.ref} (student)", spec, container, networks, "")
    det = "DDIM" if pspec.params.get("scheduler") == "ddim" else "DDIM (deterministic ODE of)"
    return (
        objective,
        student,
        f"{n}-step DDIM sampler on every {k // n}th step of the teacher's grid "
        f"{sprog.params['timesteps']}, denoiser initialised from the teacher's; teacher {pname}",
        {
            "method": "progressive distillation (Salimans & Ho 2022) in one round: the "
            f"student's {n}-step rollout regressed onto the teacher's {det}-{k} states at the "
            "same timesteps, from the same noise and cond; AdamW, warm-up + cosine, EMA, "
            "grad clipping",
            "data": {"conds": len(conds)},
            "training": {"teacher_steps": k, "student_steps": n},
        },
    )


def _threads() -> int:
    from edgekit.runtimes import default_threads

    return default_threads()


# --- report ----------------------------------------------------------------------------------


def _facts(src: TorchSource, program: str | None) -> dict[str, Any]:
    from edgekit.inspect import tick_flops

    params = {id(p): p.numel() for net in src.networks.values() for p in net.parameters()}
    if program not in src.spec.programs:  # a model without named programs: its default one
        program = None
    pspec = src.spec.programs[program] if program else src.spec.program
    return {
        "ref": src.ref,
        "program": program or next(iter(src.spec.programs), "default"),
        "calls_per_tick": build_program(pspec).calls_per_tick(),
        "params": int(sum(params.values())),
        "flops_per_tick": tick_flops(src, program),
        "config": src.spec.config,
    }


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
    from edgekit.export.onnx import export_onnx
    from edgekit.runtimes import OrtRuntime

    threads = _threads()
    with tempfile.TemporaryDirectory(prefix="edgekit-distill-") as tmpdir:
        work = Path(tmpdir)
        t_exp = export_onnx(source, work / "teacher", check_parity=False)
        s_exp = export_onnx(student, work / "student", seed=config.seed)
        t_files = {n: t_exp.out / e["file"] for n, e in t_exp.manifest.files.items()}
        s_files = {n: s_exp.out / e["file"] for n, e in s_exp.manifest.files.items()}
        t_rt = OrtRuntime(t_files, threads=threads)
        s_rt = OrtRuntime(s_files, threads=threads)
        if config.mode == "steps":
            fid = _step_fidelity(source, student, pname, t_rt, s_rt, holdout, config.seed)
        else:
            fid = _tick_fidelity(source, t_rt, s_rt, holdout, config.seed)
        report["fidelity"] = fid
        report["latency"] = _latency(source, student, pname, t_rt, s_rt, config, threads)
        gate = {"max_error": config.max_error, "metric": fid["headline"]["metric"]}
        result = DistillResult(out, config, report)
        gate["passed"] = result.passed
        report["gate"] = gate
        if not result.passed:
            raise DistillGateFailed(
                f"student {fid['headline']['metric']} {fid['headline']['value']:.4g} exceeds "
                f"--max-error {config.max_error:g}; nothing written",
                result,
            )
        with staging_dir(out, force) as tmp:
            files = {}
            for net, path in s_files.items():
                shutil.copy2(path, tmp / path.name)
                files[net] = {"file": path.name, "sha256": sha256_file(tmp / path.name)}
            _save_weights(student, tmp / "student.safetensors")
            manifest = Manifest(
                stage="distill",
                format="onnx",
                source=source_info(source),
                spec=student.spec,
                files=files,
                checks={"parity": s_exp.manifest.checks["parity"], "distill": report},
            )
            write_manifest(tmp, manifest)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return result


def _save_weights(student: TorchSource, path: Path) -> None:
    from safetensors.torch import save_file

    state: dict[str, Any] = {}
    seen: set[int] = set()
    for net, module in student.networks.items():
        for k, v in module.state_dict().items():
            if id(v) in seen:
                continue
            seen.add(id(v))
            state[f"{net}.{k}"] = v.detach().contiguous().clone()
    save_file(state, str(path))


def _tick_fidelity(
    source: TorchSource, t_rt: Any, s_rt: Any, holdout: list[Arrays], seed: int
) -> dict[str, Any]:
    from edgekit.loop.capture import obs_match
    from edgekit.loop.fidelity import tick_fidelity, worst_error

    programs = {n: build_program(p) for n, p in (source.spec.programs or {}).items()}
    programs = programs or {"default": build_program(source.spec.program)}
    programs = {n: p for n, p in programs.items() if obs_match(p.observation_spec(), holdout[0])}
    rows = tick_fidelity(programs, t_rt, s_rt, holdout, seed)
    return {
        "measured_on": "onnxruntime FP32 (graph optimizations on), teacher vs student",
        "scope": f"whole tick, {len(holdout)} held-out observations per program, same seed",
        "rows": [r.to_dict() for r in rows],
        "headline": {"metric": "rel_l2", "value": worst_error(rows)},
    }


def run_chunks(
    params: dict[str, Any], runtime: Any, observations: list[Arrays], seed: int
) -> list[np.ndarray]:
    """Action chunks of a sampler, reset to ``seed + i`` for observation ``i`` (so every
    sampler starts from the same noise for the same observation)."""
    from edgekit.distill.steps import sampler_program

    program = sampler_program(params)
    ctx = TickContext(runtime)
    out = []
    for i, obs in enumerate(observations):
        program.reset(seed + i)
        ctx.clear()
        out.append(program.tick(ctx, obs)["action_chunk"])
    return out


def _step_fidelity(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    t_rt: Any,
    s_rt: Any,
    holdout: list[Arrays],
    seed: int,
) -> dict[str, Any]:
    from edgekit.distill.steps import action_error, teacher_params

    tparams = dict(source.spec.programs[pname].params)
    sparams = dict(student.spec.program.params)
    k, n = int(tparams["num_inference_steps"]), int(sparams["num_inference_steps"])
    ref = run_chunks(teacher_params(tparams, k), t_rt, holdout, seed)
    got = run_chunks(sparams, s_rt, holdout, seed)
    base = run_chunks(sparams, t_rt, holdout, seed)  # the student before training
    student_err = action_error(got, ref, tparams)
    return {
        "measured_on": "onnxruntime FP32 (graph optimizations on)",
        "scope": f"action chunk vs the teacher's deterministic DDIM-{k} sampler, same initial "
        f"noise and cond, {len(holdout)} held-out observations; abs errors in units of the "
        "action range (high - low)",
        "student": student_err,
        "undistilled_baseline": {
            "what": f"teacher denoiser, same {n}-step grid",
            **action_error(base, ref, tparams),
        },
        "headline": {"metric": "action_range_mean_abs", "value": student_err["mean_abs"]},
    }


def _latency(
    source: TorchSource,
    student: TorchSource,
    pname: str,
    t_rt: Any,
    s_rt: Any,
    config: DistillConfig,
    threads: int,
) -> dict[str, Any]:
    from edgekit.loop.timing import time_ticks

    if config.latency_ticks <= 0:
        return {"measured": False, "why": "latency check disabled"}
    t_prog = build_program(source.spec.programs.get(pname, source.spec.program))
    s_prog = build_program(
        student.spec.program
        if config.mode == "steps"
        else student.spec.programs.get(pname, student.spec.program)
    )
    n = max(1, config.latency_ticks // 3)
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    for _ in range(3):
        a.append(time_ticks(t_prog, t_rt, n, warmup=1).tick_ns)
        b.append(time_ticks(s_prog, s_rt, n, warmup=1).tick_ns)
    t_ms = float(np.median(np.concatenate(a))) / 1e6
    s_ms = float(np.median(np.concatenate(b))) / 1e6
    return {
        "measured": True,
        "where": "this host (cpu), onnxruntime FP32",
        "method": f"edgekit bench's whole-tick timer, p50 of {3 * n} ticks each, teacher and "
        "student alternating",
        "teacher_program": pname,
        "teacher_p50_ms": t_ms,
        "student_p50_ms": s_ms,
        "speedup": t_ms / s_ms if s_ms > 0 else None,
        "threads": threads,
    }
