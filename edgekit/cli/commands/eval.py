"""``edgekit eval``: closed-loop task success in simulation (:mod:`edgekit.eval`)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import (
    InputsOpt,
    JsonReportOpt,
    ModelArg,
    PickleOpt,
    PluginOpt,
    QuietOpt,
    TimeoutOpt,
    WeightsOpt,
    choice_option,
)


def eval_cmd(
    model: ModelArg,
    env: Annotated[str, choice_option("--env", options.ENVS, "Simulated task.")] = "reacher",
    episodes: Annotated[int, typer.Option("--episodes", "-n", help="Seeded episodes.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Episode i uses seed + i.")] = 0,
    teacher: Annotated[
        str,
        typer.Option(
            "--teacher",
            metavar="auto|none|MODEL",
            help="Reference policy: 'auto' (the artifact's source), 'none', or a model.",
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
        str | None,
        typer.Option("--program", metavar="NAME", help="Another loop program of the model."),
    ] = None,
    runtime: Annotated[
        str,
        choice_option("--runtime", ("ort", "openvino"), "What runs the candidate's networks."),
    ] = "ort",
    json_out: JsonReportOpt = None,
    quiet: QuietOpt = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    allow_plugin: PluginOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Closed-loop task success in simulation, next to the teacher.

    Seeded MuJoCo episodes run the policy through its own control-loop program.
    """
    from edgekit.cli.guard import check_json, finish, output
    from edgekit.cli.render.eval import print_eval
    from edgekit.cli.render.progress import shown
    from edgekit.eval import EvalConfig, evaluate, get_task

    output(json_out, quiet)
    config = EvalConfig.from_options(
        env=env,
        episodes=episodes,
        seed=seed,
        teacher=teacher,
        min_success_ratio=min_success_ratio,
        program=program,
        runtime=runtime,
    )
    get_task(env)  # unknown task: fail before loading anything
    check_json(json_out)
    with shown("eval"):
        source = options.load_source(model, weights, inputs, allow_pickle, timeout, allow_plugin)
        result = evaluate(source, config)
    print_eval(result)
    finish(result, json_out)
