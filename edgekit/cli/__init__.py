"""The ``edgekit`` command: parse, call the library, render. Nothing heavy at import time.

Exit codes: 0 ok, 1 a gate failed, 2 bad usage or input, 3 missing backend/device, 4 internal
error. Errors print one line; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from edgekit.loader import Source

from edgekit.errors import EXIT_INTERNAL, EdgekitError, set_debug

app = typer.Typer(
    name="edgekit",
    help="Fit a robot's AI stack on the robot: export and bench stack models against "
    "control-loop budgets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from edgekit import __version__

        print(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    _state["debug"] = debug
    set_debug(debug)


ModelArg = Annotated[
    str,
    typer.Argument(
        help="zoo:NAME[:PRESET], FILE.py:factory, pkg.module:factory, FILE.onnx, FILE.pt2, "
        "or an artifact folder.",
        show_default=False,
    ),
]
WeightsOpt = Annotated[
    Path | None, typer.Option("--weights", help="Trained weights (.safetensors) for a zoo model.")
]
InputsOpt = Annotated[
    Path | None, typer.Option("--inputs", help="Sample inputs (.npz) for a factory/pt2 model.")
]
PickleOpt = Annotated[
    bool,
    typer.Option(
        "--allow-pickle",
        help="Trust a model file that runs code when loaded: a pickle checkpoint (.pt/.pth), "
        "or a .pt2 with pickled or evaluated parts. Only for files you trust.",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds a FILE.py:factory / module:factory may take to import, build the model "
        "and run its sample forward (exit 2 past it). Default: no limit.",
        show_default=False,
    ),
]


def _load(
    model: str,
    weights: Path | None,
    inputs: Path | None,
    allow_pickle: bool,
    timeout: float | None = None,
) -> Source:
    from edgekit.loader import load

    return load(model, weights=weights, inputs=inputs, allow_pickle=allow_pickle, timeout=timeout)


@app.command()
def models(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this zoo kind.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write rows as JSON.")
    ] = None,
) -> None:
    """List the built-in stack-model zoo: parameters, FLOPs and network calls per tick."""
    import json

    from edgekit.cli.guard import check_json
    from edgekit.cli.render import si, table
    from edgekit.inspect import zoo_facts

    check_json(json_out)  # an unwritable --json fails before the zoo is counted
    facts = zoo_facts(kind)
    table(
        "edgekit zoo (FLOPs counted on one real tick of the default loop program)",
        ["kind", "category", "preset", "params", "FLOPs/tick", "calls/tick", "Hz", "program"],
        [
            [
                f.kind,
                f.category,
                f.preset,
                si(f.params),
                si(f.flops_per_tick),
                " + ".join(f"{n} x{k}" for n, k in f.calls_per_tick.items()),
                f"{f.hz:g}",
                f.program,
            ]
            for f in facts
        ],
    )
    if json_out:
        from edgekit.destinations import write_text_atomic

        write_text_atomic(
            json_out, json.dumps([f.to_dict() for f in facts], indent=2) + "\n", "--json"
        )


@app.command()
def targets(
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write as JSON.")] = None,
) -> None:
    """List hardware targets with their published figures and default budgets."""
    import json

    from edgekit.cli.guard import check_json
    from edgekit.cli.render import table
    from edgekit.targets import TARGETS

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
                t.runtime,
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
        from edgekit.destinations import write_text_atomic

        rows_json = json.dumps([t.to_dict() for _, t in TARGETS.items()], indent=2) + "\n"
        write_text_atomic(json_out, rows_json, "--json")


@app.command()
def distill(
    teacher: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Student artifact folder to write.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Observations: calibration/recording .npz or folder (calib_data/README.md), "
            "or 'synthetic' to train on generated observations explicitly.",
        ),
    ] = None,
    width: Annotated[float, typer.Option("--width", help="Student hidden widths x this.")] = 1.0,
    depth: Annotated[float, typer.Option("--depth", help="Student layer counts x this.")] = 1.0,
    student: Annotated[
        str | None, typer.Option("--student", help="Student model reference (instead).")
    ] = None,
    denoise_steps: Annotated[
        int | None,
        typer.Option("--denoise-steps", help="Step-distil the sampler to N (1-4) denoiser calls."),
    ] = None,
    program: Annotated[
        str | None, typer.Option("--program", help="Teacher loop program (e.g. ddim16).")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training (optimiser) steps.")] = 300,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per step.")] = 32,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="AdamW peak LR [default: 1e-3; 1e-4 with --denoise-steps]."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
    max_error: Annotated[
        float | None,
        typer.Option(
            "--max-error",
            help="Gate (exit 1): whole-tick relative L2, or for --denoise-steps the mean "
            "action error as a fraction of the action range.",
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
    latency_ticks: Annotated[
        int, typer.Option("--latency-ticks", help="Ticks timed for the speed check (0: skip).")
    ] = 30,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report.")] = None,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Distil a teacher into a smaller or few-step student, with fidelity and latency."""
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed
    from edgekit.cli.report import print_distill, train_progress, write_json
    from edgekit.distill import DistillConfig, DistillGateFailed
    from edgekit.distill import distill as run_distill
    from edgekit.distill.api import check_resume

    config = DistillConfig(
        width=width,
        depth=depth,
        student=student,
        denoise_steps=denoise_steps,
        program=program,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        max_error=max_error,
        checkpoint_every=checkpoint_every,
        latency_ticks=latency_ticks,
    )
    check_out_dir(out, force)
    check_resume(out, resume, force)  # fail before loading the teacher
    with claimed(out, json_out):  # before the job: unwritable or busy --out/--json fail now
        source = _load(teacher, weights, inputs, allow_pickle, timeout)
        with train_progress() as progress:
            try:
                result = run_distill(
                    source, out, config, data, force=force, resume=resume, progress=progress
                )
            except DistillGateFailed as e:
                print_distill(e.result)
                if json_out:
                    write_json(json_out, e.result.report)
                raise
    if result.out is None:  # a torchrun worker: rank 0 reports
        return
    print_distill(result)
    if json_out:
        write_json(json_out, result.report)


@app.command()
def export(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact folder to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Export format.")] = "onnx",
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    no_parity: Annotated[
        bool, typer.Option("--no-parity", help="Skip the numerical parity check.")
    ] = False,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="qnn: the Qualcomm target to compile for.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="qnn: fail on any CPU fallback or fidelity miss.")
    ] = False,
    max_error: Annotated[
        float | None, typer.Option("--max-error", help="qnn: whole-tick rel-L2 vs FP32 limit.")
    ] = None,
    precision: Annotated[
        str, typer.Option("--precision", help="tensorrt: fp16 (default), int8 (Q/DQ) or fp32.")
    ] = "fp16",
    build: Annotated[
        bool, typer.Option("--build", help="tensorrt: build the engines (needs TensorRT + GPU).")
    ] = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Export a model: ONNX per network with a parity check, or QNN context binaries."""
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed
    from edgekit.errors import BadInputError
    from edgekit.export import FORMATS

    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    check_out_dir(out, force)  # fail before loading anything
    with claimed(out):
        source = _load(model, weights, inputs, allow_pickle, timeout)
        _export(source, out, fmt, force, no_parity, target, strict, max_error, precision, build)


def _export(
    source: Source,
    out: Path,
    fmt: str,
    force: bool,
    no_parity: bool,
    target: str | None,
    strict: bool,
    max_error: float | None,
    precision: str,
    build: bool,
) -> None:
    from edgekit.cli.render import line
    from edgekit.errors import BadInputError
    from edgekit.export import FORMATS

    if fmt == "qnn":
        from edgekit.cli.report import print_qnn

        print_qnn(
            FORMATS[fmt](
                source, out, target=target, strict=strict, max_error=max_error, force=force
            )
        )
        return
    if fmt == "tensorrt":
        from edgekit.cli.report import print_tensorrt

        if strict or max_error is not None:
            raise BadInputError("--strict/--max-error apply to --format qnn")
        print_tensorrt(
            FORMATS[fmt](
                source,
                out,
                target=target,
                precision=precision,
                build=build,
                force=force,
                check_parity=not no_parity,
            )
        )
        return
    if target is not None or strict or max_error is not None or build:
        raise BadInputError("--target/--strict/--max-error/--build apply to --format qnn/tensorrt")
    result = FORMATS[fmt](source, out, force=force, check_parity=not no_parity)
    m = result.manifest
    line(f"exported {m.source['ref']} -> {out} ({', '.join(e['file'] for e in m.files.values())})")
    for r in result.parity:
        status = "ok" if r.ok else "FAIL"
        line(
            f"  parity {r.scope:7s} {r.name}.{r.output}: max-abs {r.max_abs:.2e} "
            f"(limit {r.limit:.2e}), cosine {r.cosine:.6f}  {status}"
        )


@app.command()
def quantize(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact folder to write.")],
    calib: Annotated[
        str | None,
        typer.Option(
            "--calib",
            help="Calibration .npz or folder (see calib_data/README.md), "
            "or 'synthetic' to calibrate on generated observations explicitly.",
        ),
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="int8, int4 or mixed.")] = "int8",
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile.")] = "cpu",
    max_error: Annotated[
        float | None,
        typer.Option("--max-error", help="Gate: worst whole-tick relative L2 vs FP32 (exit 1)."),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="Calibration: minmax, percentile or entropy.")
    ] = "minmax",
    block_size: Annotated[int, typer.Option("--block-size", help="INT4 block size.")] = 32,
    asymmetric: Annotated[
        bool, typer.Option("--asymmetric", help="INT4: asymmetric weights (zero points).")
    ] = False,
    latency_ticks: Annotated[
        int, typer.Option("--latency-ticks", help="Ticks timed for the speed check (0: skip).")
    ] = 30,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report.")] = None,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Quantize (INT8 / INT4 / mixed) for a target, with whole-tick fidelity vs FP32."""
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed
    from edgekit.cli.report import print_quantize, write_json
    from edgekit.quantize import QuantizeConfig, QuantizeGateFailed
    from edgekit.quantize import quantize as run_quantize
    from edgekit.targets import get_target

    config = QuantizeConfig(
        precision=precision,
        target=get_target(target).name,
        method=method,
        block_size=block_size,
        symmetric=not asymmetric,
        max_error=max_error,
        latency_ticks=latency_ticks,
    )
    check_out_dir(out, force)
    with claimed(out, json_out):  # before the job: unwritable or busy --out/--json fail now
        source = _load(model, weights, inputs, allow_pickle, timeout)
        try:
            result = run_quantize(source, out, config, calib, force=force)
        except QuantizeGateFailed as e:
            print_quantize(e.result)
            if json_out:
                write_json(json_out, e.result.report)
            raise
    print_quantize(result)
    if json_out:
        write_json(json_out, result.report)


@app.command()
def bench(
    model: ModelArg,
    target: Annotated[str, typer.Option("--target", "-t", help="Target profile.")] = "cpu",
    runtime: Annotated[str, typer.Option("--runtime", help="ort (default) or torch.")] = "ort",
    ticks: Annotated[int, typer.Option("--ticks", help="Timed ticks.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up ticks.")] = 20,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Intra-op threads (default: usable CPUs).")
    ] = None,
    spin: Annotated[
        bool, typer.Option("--spin", help="Let onnxruntime threads spin-wait (off by default).")
    ] = False,
    hz: Annotated[float | None, typer.Option("--hz", help="Loop rate (default: model's).")] = None,
    budget_ms: Annotated[
        float | None, typer.Option("--budget-ms", help="Tick budget (default: target's).")
    ] = None,
    gate: Annotated[str, typer.Option("--gate", help="Statistic held to the budget.")] = "p99",
    program: Annotated[
        str | None, typer.Option("--program", help="Another loop program of the model.")
    ] = None,
    loop: Annotated[
        list[str] | None,
        typer.Option("--loop", help="Override a loop-program parameter, KEY=VALUE (repeatable)."),
    ] = None,
    require_measured: Annotated[
        bool,
        typer.Option(
            "--require-measured",
            help="Fail (exit 1) instead of estimating a target that is not this machine.",
        ),
    ] = False,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Estimates only: fp32, fp16, int8 or int16 [default: the target's usual].",
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report.")] = None,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Measure the whole control tick against the target's budget (exit 1 when missed); a
    target that is not this machine gets a labelled roofline estimate instead."""
    from edgekit.bench import bench as run_bench
    from edgekit.bench.api import parse_loop_params
    from edgekit.bench.estimated import EstimateReport
    from edgekit.cli.guard import check_json
    from edgekit.cli.report import print_bench, print_estimate, write_json
    from edgekit.errors import BudgetMissed
    from edgekit.targets import get_target

    get_target(target)  # unknown target: fail before loading the model
    params = parse_loop_params(loop)
    check_json(json_out)  # an unwritable --json fails before the bench, not after
    source = _load(model, weights, inputs, allow_pickle, timeout)
    report = run_bench(
        source,
        target=target,
        runtime=runtime,
        ticks=ticks,
        warmup=warmup,
        threads=threads,
        spinning=spin,
        hz=hz,
        budget_ms=budget_ms,
        gate=gate,
        program=program,
        loop_params=params,
        require_measured=require_measured,
        precision=precision,
    )
    if json_out:
        write_json(json_out, report.to_dict())
    if isinstance(report, EstimateReport):
        print_estimate(report)
        if not report.passed:
            raise BudgetMissed(
                f"budget missed (ESTIMATED): {report.tick_ms:.2f} ms > "
                f"{report.budget_ms:.2f} ms on {report.target.name}"
            )
        return
    print_bench(report)
    if not report.passed:
        s = report.stats
        raise BudgetMissed(
            f"budget missed: {report.gate} {s.stat(report.gate):.2f} ms > "
            f"{report.budget_ms:.2f} ms on {report.target.name}"
        )


@app.command("eval")
def eval_cmd(
    model: ModelArg,
    env: Annotated[str, typer.Option("--env", help="Simulated task (reacher).")] = "reacher",
    episodes: Annotated[int, typer.Option("--episodes", "-n", help="Seeded episodes.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Episode i uses seed + i.")] = 0,
    teacher: Annotated[
        str,
        typer.Option(
            "--teacher", help="Reference policy: 'auto' (the artifact's source), 'none' or a REF."
        ),
    ] = "auto",
    min_success_ratio: Annotated[
        float | None,
        typer.Option(
            "--min-success-ratio",
            help="Gate (exit 1): candidate success >= this x the teacher's (e.g. 0.9).",
        ),
    ] = None,
    program: Annotated[
        str | None, typer.Option("--program", help="Another loop program of the model.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report.")] = None,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Closed-loop task success of a policy in simulation (MuJoCo), next to its teacher."""
    from edgekit.cli.guard import check_json
    from edgekit.cli.report import print_eval, write_json
    from edgekit.eval import EvalGateFailed, evaluate, get_task

    get_task(env)  # unknown task: fail before loading anything
    check_json(json_out)
    source = _load(model, weights, inputs, allow_pickle, timeout)
    ref: str | None = None if teacher == "none" else teacher
    try:
        result = evaluate(
            source,
            env,
            episodes,
            seed,
            teacher=ref,
            min_success_ratio=min_success_ratio,
            program=program,
        )
    except EvalGateFailed as e:
        print_eval(e.result)
        if json_out:
            write_json(json_out, e.result.report)
        raise
    print_eval(result)
    if json_out:
        write_json(json_out, result.report)


recipe_app = typer.Typer(
    help="Recipe files (recipes/*.yaml): check one without running it.", no_args_is_help=True
)
app.add_typer(recipe_app, name="recipe")


@recipe_app.command("check")
def recipe_check(
    file: Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)],
) -> None:
    """Validate a recipe (schema, stages, targets, budgets) without running anything."""
    from edgekit.cli.render import line
    from edgekit.run import load_recipe

    r = load_recipe(file)
    stages = " -> ".join(s.stage for s in r.stages)
    budgets = ", ".join(
        f"{t} ({b.budget_ms:g} ms)" if b.budget_ms else f"{t} (target default)"
        for t, b in r.targets.items()
    )
    line(f"{file}: ok: recipe {r.name!r} (schema_version {r.schema_version}), model {r.model}")
    line(f"  stages: {stages}" + (f"; targets: {budgets}" if budgets else ""))


@app.command("run")
def run_recipe(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder, kept as the stage cache [out/NAME]."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Replace the zoo model's preset (e.g. tiny).")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Observations instead of the recipe's data.")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a recipe setting, KEY=VALUE (repeatable): stages[0].steps=50"
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Also write the report JSON here ('-': stdout, quiet)."),
    ] = None,
) -> None:
    """Run a recipe: every stage in order, gates per target and per fidelity limit; writes
    report.json, junit.xml, summary.md and latency plots to the run folder (exit 1: a gate
    failed)."""
    from edgekit.cli.guard import claimed
    from edgekit.cli.report import print_run, run_progress
    from edgekit.errors import GateFailed
    from edgekit.run import RunError, load_recipe
    from edgekit.run import run as run_lib

    quiet = quiet or json_out == "-"
    name = load_recipe(recipe, overrides).name  # a bad recipe fails (exit 2) before any output
    out = out if out is not None else Path("out") / name
    with claimed(out, json_out), run_progress(quiet) as (on_event, distill_progress):
        try:
            result = run_lib(
                recipe,
                out,
                preset=preset,
                data=data,
                overrides=overrides,
                on_event=on_event,
                distill_progress=distill_progress,
            )
        except RunError as e:
            result = e.result
            _emit_json(json_out, result.report)
            if not quiet:
                print_run(result)
            raise
    _emit_json(json_out, result.report)
    if not quiet:
        print_run(result)
    if not result.passed:
        failed = [g["name"] for g in result.report["gates"] if g["status"] == "failed"]
        raise GateFailed(f"{len(failed)} gate(s) failed: {'; '.join(failed)}")


def _emit_json(json_out: str | None, report: dict[str, object]) -> None:
    import json

    if json_out is None:
        return
    text = json.dumps(report, indent=2) + "\n"
    if json_out == "-":
        sys.stdout.write(text)
    else:
        from edgekit.destinations import write_text_atomic

        write_text_atomic(json_out, text, "--json")


def main() -> None:
    """Console-script entry point: map edgekit errors to one line and an exit code.

    Usage errors (unknown option, missing argument) are printed by typer itself, exit code 2.
    SIGINT/SIGTERM unwind the command (cleanup runs) and exit 130/143 with one line.
    """
    from edgekit.cli.guard import os_error_line, signals_unwind
    from edgekit.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Signalled

    try:
        with signals_unwind():
            app()
    except EdgekitError as e:
        _fail(str(e), e.exit_code)
    except Signalled as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt:  # SIGINT raised as such where our handler was not installed
        _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as e:  # the OS refused (full disk, permissions...): the user's to fix
        _fail(os_error_line(e), EXIT_BAD_INPUT)
    except Exception as e:
        if _state["debug"]:
            traceback.print_exc()
        print(
            f"internal error: {type(e).__name__}: {e} (rerun with --debug and report it)",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERNAL)


def _fail(message: str, code: int) -> None:
    if _state["debug"]:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
