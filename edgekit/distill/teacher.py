"""The teacher's loop program that ``edgekit distill`` distils: ``--program`` picks it,
``--loop KEY=VALUE`` overrides its parameters (e.g. ``--loop steps=20`` for a 20-step flow
teacher, ``--loop scheduler=ddpm --loop num_inference_steps=100`` for a DDPM-100 diffusion
teacher), checked as ``edgekit bench --loop`` checks them.

A flow-matching program (``vla-flow``: Euler steps on pi0's grid, its only sampler parameter
``steps``) given a diffusion scheduler option (scheduler, eta, clip_sample, prediction_type,
num_inference_steps, ...) is refused in one line: it has no such scheduler to configure.
"""

from __future__ import annotations

from dataclasses import replace

from edgekit.distill.config import DistillConfig
from edgekit.errors import BadInputError
from edgekit.loader import TorchSource
from edgekit.models import build_program
from edgekit.spec import ProgramSpec
from edgekit.validate import loop_override

FLOW_PROGRAMS = ("vla-flow",)
#: options of DDPM / DDIM / DPM-Solver++ samplers (diffusers' scheduler config and call)
DIFFUSION_OPTIONS = frozenset(
    {
        "scheduler", "num_inference_steps", "timesteps", "eta", "clip_sample",
        "clip_sample_range", "prediction_type", "beta_schedule", "beta_start", "beta_end",
        "num_train_timesteps", "trained_betas", "steps_offset", "timestep_spacing",
        "set_alpha_to_one", "variance_type", "thresholding", "solver_order", "algorithm_type",
    }
)  # fmt: skip


def teacher_program(source: TorchSource, config: DistillConfig) -> tuple[str, ProgramSpec]:
    """The teacher program's name and spec, with ``config.loop`` applied."""
    programs = source.spec.programs or {"default": source.spec.program}
    if config.program is None:
        pname, pspec = next(
            ((n, p) for n, p in programs.items() if p == source.spec.program),
            ("default", source.spec.program),
        )
    elif config.program not in programs:
        raise BadInputError(
            f"--program {config.program!r}: {source.ref} has programs {sorted(programs)}"
        )
    else:
        pname, pspec = config.program, programs[config.program]
    overrides = dict(config.loop or {})
    if not overrides:
        return pname, pspec
    where = f"{source.ref} program {pname!r}"
    if pspec.name in FLOW_PROGRAMS:
        wrong = sorted(DIFFUSION_OPTIONS & set(overrides))
        if wrong:
            raise BadInputError(
                f"--loop {wrong[0]}: a diffusion scheduler option, but {where} is flow matching "
                f"({pspec.name}: Euler steps from noise to actions); its sampler takes only "
                "--loop steps=K"
            )
    unknown = sorted(set(overrides) - set(pspec.params))
    if unknown:
        raise BadInputError(
            f"--loop {unknown[0]}: not a parameter of {where} ({pspec.name}); "
            f"known: {', '.join(sorted(pspec.params))}"
        )
    for key, value in overrides.items():
        loop_override(key, value, pspec.params[key], pspec.name)
    new = ProgramSpec(pspec.name, {**pspec.params, **overrides}, pspec.hz)
    try:
        build_program(new)
    except (ValueError, TypeError) as e:  # the program refusing its parameters
        shown = " ".join(f"{k}={v}" for k, v in overrides.items())
        raise BadInputError(f"--loop {shown}: {str(e).splitlines()[0]}") from None
    return pname, new


def with_program(source: TorchSource, pname: str, pspec: ProgramSpec) -> TorchSource:
    """``source`` whose program ``pname`` (and default program, if that is it) is ``pspec``."""
    spec = source.spec
    if spec.programs.get(pname, spec.program) == pspec:
        return source
    default = spec.program
    is_default = pname not in spec.programs or spec.programs[pname] == default
    programs = {**spec.programs, pname: pspec} if spec.programs else {}
    new_spec = replace(spec, programs=programs, program=pspec if is_default else default)
    return replace(source, spec=new_spec)
