"""``edgekit distill``: a smaller or few-step student of a teacher (:mod:`edgekit.distill`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    ForceOpt,
    InputsOpt,
    JsonReportOpt,
    LatencyTicksOpt,
    ModelArg,
    PickleOpt,
    PluginOpt,
    QuietOpt,
    TimeoutOpt,
    WeightsOpt,
)

DATA_REQUIRED = (
    "--data is required: observations as a calibration/recording .npz (see "
    "calib_data/README.md), or `--data synthetic` to train on generated observations"
)


def distill(
    teacher: ModelArg,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Student artifact folder to write."),
    ],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="FILE|DIR|synthetic",
            help="Observations: calibration/recording .npz or folder (calib_data/README.md), "
            "or 'synthetic' to train on generated observations explicitly.",
        ),
    ] = None,
    width: Annotated[float, typer.Option("--width", help="Student hidden widths x this.")] = 1.0,
    depth: Annotated[float, typer.Option("--depth", help="Student layer counts x this.")] = 1.0,
    student: Annotated[
        str | None,
        typer.Option(
            "--student",
            metavar="MODEL",
            help="Student model reference (instead of scaling), e.g. an earlier distill output; "
            "with --denoise-steps (vla-flow) its prefix and expert train through the sampler.",
        ),
    ] = None,
    denoise_steps: Annotated[
        int | None,
        typer.Option(
            "--denoise-steps",
            metavar="N",
            help="Step-distil the sampler to N (1-4) denoiser calls.",
        ),
    ] = None,
    denoise_block: Annotated[
        str | None,
        typer.Option(
            "--denoise-block",
            metavar="BLOCK",
            help="With --denoise-steps on a tick of several denoise blocks: which one "
            "(its index in the tick's blocks, or its result name).",
        ),
    ] = None,
    program: Annotated[
        str | None,
        typer.Option("--program", metavar="NAME", help="Teacher loop program (e.g. ddim16)."),
    ] = None,
    loop: Annotated[
        list[str] | None,
        typer.Option(
            "--loop",
            metavar="KEY=VALUE",
            help="Override a parameter of the teacher's loop program (repeatable), e.g. "
            "steps=20 (flow) or scheduler=ddpm (diffusion).",
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training (optimiser) steps.")] = 300,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per step.")] = 32,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            help="Peak learning rate of AdamW. Default: 1e-3, or 1e-4 with --denoise-steps.",
        ),
    ] = None,
    teacher_pool: Annotated[
        int,
        typer.Option(
            "--teacher-pool",
            metavar="ROWS",
            help="With --denoise-steps: run the teacher's sampler once for ROWS (noise, "
            "observation) rows and train on those (several times more steps per CPU minute); "
            "0: new teacher rollouts every batch.",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    max_error: Annotated[
        str | None,
        typer.Option(
            "--max-error",
            metavar="E|METRIC=E",
            help="Fidelity gate vs the teacher (exit 1, nothing written): a number holds the "
            "whole-tick relative L2 (for --denoise-steps the mean action, or denoise result, "
            "error as a fraction of its range) at most; token_agreement=0.95 / "
            "choice_agreement=0.9 the fraction of decoded tokens / reranker choices equal to "
            "the teacher's at least.",
            show_default=False,
        ),
    ] = None,
    checkpoint_every: Annotated[
        int, typer.Option("--checkpoint-every", help="Steps between checkpoints (0: none).")
    ] = 100,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from OUT.ckpt/ after an interruption (an error if there is none; "
            "without --resume an existing checkpoint needs --force, which discards it).",
        ),
    ] = False,
    latency_ticks: LatencyTicksOpt = 30,
    force: ForceOpt = False,
    json_out: JsonReportOpt = None,
    quiet: QuietOpt = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Distil a teacher into a smaller or few-step student.

    The student is trained on the teacher's outputs over the given observations; its fidelity
    (vs the teacher) and latency are measured before it is written.
    """
    from edgekit.artifacts import check_out_dir
    from edgekit.bench.api import parse_loop_params
    from edgekit.cli.guard import claimed, finish, output
    from edgekit.cli.render.distill import print_distill, train_progress
    from edgekit.distill import DistillConfig
    from edgekit.distill.checkpoint import check_resume

    output(json_out, quiet)
    config = DistillConfig.from_options(
        width=width,
        depth=depth,
        student=student,
        denoise_steps=denoise_steps,
        denoise_block=denoise_block,
        program=program,
        loop=parse_loop_params(loop) or None,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        teacher_pool=teacher_pool,
        seed=seed,
        max_error=options.budget(max_error),
        checkpoint_every=checkpoint_every,
        latency_ticks=latency_ticks,
    )
    options.check_data(data, DATA_REQUIRED)
    check_out_dir(out, force)
    check_resume(out, resume, force)  # fail before loading the teacher
    from edgekit.cli.guard import quiet as is_quiet
    from edgekit.distill import distill as run_distill  # imports torch: after every check

    with claimed(out, json_out), train_progress(is_quiet()) as progress:  # --out fails now
        source = options.load_source(teacher, weights, inputs, allow_pickle, timeout, allow_plugin)
        result = run_distill(
            source, out, config, data, force=force, resume=resume, progress=progress
        )
    if result.out is None:  # a torchrun worker: rank 0 reports
        return
    print_distill(result)
    finish(result, json_out, out)
