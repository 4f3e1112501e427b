"""A declared tick's denoise block as step distillation sees it: which block, the teacher's
deterministic sampler, the student's grid, both samplers and the denoiser call in torch.

* Teacher: the block's own sampler for DDIM and flow-matching Euler (both deterministic); for
  DDPM and DPM-Solver++ the DDIM sampler of the same network on the teacher's own timesteps
  (explicit, each step to the next, the last to the clean sample), i.e. the deterministic
  (probability-flow) counterpart of its sampler, as the zoo's step distillation does.
* Student: the same block with ``num_inference_steps`` = N and an explicit grid on the
  teacher's: DDIM ``timesteps`` at the teacher's first timestep and then where the teacher's
  sampler stands after every (K/N)-th step (its last step going to the clean sample); flow
  ``sigmas`` at every (K/N)-th sigma of the teacher's grid.
"""

from __future__ import annotations

import math
from functools import partial
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from edgekit.distill.rollout import CallFn, TorchSampler, ddim_update, euler_update
from edgekit.errors import BadInputError
from edgekit.loop.blocks import declare_tick
from edgekit.loop.blocks.calls import Denoise
from edgekit.spec import NetworkSpec

NEEDS = (
    "--denoise-steps needs a tick with a denoise block (or the zoo's diffusion-sampler or vla-flow)"
)
#: the beta-schedule options a DDIM reference of a DDPM / DPM-Solver++ teacher keeps
_DDIM_KEYS = (
    "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
    "prediction_type", "steps_offset", "timestep_spacing",
)  # fmt: skip


def effective(params: dict[str, Any]) -> dict[str, Any]:
    """A tick's params as they run: its top-level ``num_inference_steps`` applied to every
    denoise block (and kept only where it still agrees with all of them)."""
    return with_blocks(declare_tick(params).model_dump(mode="json", exclude_none=True), {})


def with_blocks(params: dict[str, Any], changes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The tick with blocks replaced (index -> block params); the top-level
    ``num_inference_steps`` is set when every denoise block has the same, else dropped."""
    blocks = [changes.get(i, b) for i, b in enumerate(params["blocks"])]
    out = {k: v for k, v in params.items() if k != "num_inference_steps"}
    out["blocks"] = blocks
    steps = {b["num_inference_steps"] for b in blocks if b["block"] == "denoise"}
    if len(steps) == 1:
        out["num_inference_steps"] = steps.pop()
    return out


def pick(params: dict[str, Any], which: str | None, where: str) -> tuple[int, Denoise]:
    """The denoise block to distil: the only one, or ``which`` (its index in the tick or its
    ``result`` name) when there are several."""
    decl = declare_tick(params)
    found = [(i, b) for i, b in enumerate(decl.blocks) if isinstance(b, Denoise)]
    if not found:
        raise BadInputError(f"{NEEDS}; {where} has no denoise block")
    listed = ", ".join(f"{i} (result {b.result!r})" for i, b in found)
    if which is None:
        if len(found) > 1:
            raise BadInputError(
                f"--denoise-steps: {where} has {len(found)} denoise blocks, at blocks {listed}; "
                "say which with --denoise-block INDEX or RESULT"
            )
        return found[0]
    for i, b in found:
        if which in (str(i), b.result):
            return i, b
    raise BadInputError(f"--denoise-block {which!r}: {where}'s denoise blocks are {listed}")


def dump(block: Denoise) -> dict[str, Any]:
    return block.model_dump(mode="json", exclude_none=True)


def _block(params: dict[str, Any], where: str) -> Denoise:
    try:
        return Denoise.model_validate(params)
    except ValueError as e:  # a grid the scheduler refuses (pydantic's ValidationError)
        raise BadInputError(f"{where}: {str(e).splitlines()[-1].strip()}") from None


def teacher_name(block: Denoise) -> str:
    """The teacher's deterministic sampler, in words (``block`` as the user declared it)."""
    kind, k = block.sampler.kind, len(block.sampler.timesteps)
    if kind == "ddim":
        return f"DDIM-{k}"
    if kind == "flow-euler":
        return f"flow-matching Euler-{k}"
    return f"DDIM-{k} on its {kind} timesteps (the deterministic counterpart of its sampler)"


def reference(block: Denoise, where: str) -> Denoise:
    """The teacher's deterministic sampler (see the module docstring)."""
    sched = block.sampler
    if sched.kind in ("ddim", "flow-euler"):
        return block
    options = sched.config
    config = {
        "_class_name": "DDIMScheduler",
        **{k: options[k] for k in _DDIM_KEYS},
        "clip_sample": options.get("clip_sample", False),  # DPM-Solver++ does not clip
        "clip_sample_range": options.get("clip_sample_range", 1.0),
    }
    params = {k: v for k, v in dump(block).items() if k != "sigmas"}
    grid = [int(t) for t in sched.timesteps]
    return _block({**params, "scheduler": config, "timesteps": grid}, where)


def student(ref: Denoise, n: int, where: str) -> Denoise:
    """The N-step student block on the teacher's grid (see the module docstring)."""
    sched = ref.sampler
    k = len(sched.timesteps)
    stride = k // n
    params = {**dump(ref), "num_inference_steps": n}
    if sched.kind == "flow-euler":
        params.pop("timesteps", None)
        base = sched.base_sigmas  # type: ignore[attr-defined]
        return _block({**params, "sigmas": list(base[::stride][:n])}, where)
    prev = sched.prev_timesteps  # type: ignore[attr-defined]
    grid = [int(sched.timesteps[0])] + [int(prev[j * stride - 1]) for j in range(1, n)]
    if min(grid) < 0 or any(b >= a for a, b in pairwise(grid)):
        raise BadInputError(
            f"--denoise-steps {n}: {where} cannot be step-distilled: its {sched.kind} sampler "
            f"does not pass through {n} distinct timesteps every {stride} steps ({grid})"
        )
    return _block({**params, "timesteps": grid}, where)


def torch_sampler(block: Denoise) -> TorchSampler:
    """The block's (deterministic) sampler as a :class:`TorchSampler`."""
    sched = block.sampler
    if sched.kind == "flow-euler":
        s = sched.sigmas  # type: ignore[attr-defined]
        rows = [[b - a] for a, b in pairwise(s)]
        return TorchSampler(list(sched.timesteps), torch.tensor(rows), euler_update)
    if sched.kind != "ddim":
        raise ValueError(f"{sched.kind} is not a deterministic sampler (use reference())")
    rows = [
        [math.sqrt(a), math.sqrt(1 - a), math.sqrt(p), math.sqrt(1 - p)]
        for a, p in sched.alphas  # type: ignore[attr-defined]
    ]
    o = sched.config
    clip = float(o["clip_sample_range"]) if o["clip_sample"] else None
    step = partial(ddim_update, prediction=o["prediction_type"], clip=clip)
    return TorchSampler(list(sched.timesteps), torch.tensor(rows), step)


def sample_span(block: Denoise) -> float | None:
    """One unit of the result's error: the clipped sample's range, or None (the range of the
    teacher's results, per feature) when the sampler does not clip."""
    o = block.sampler.config
    return 2.0 * float(o["clip_sample_range"]) if o.get("clip_sample") else None


def denoiser_call(spec: NetworkSpec, block: Denoise, where: str) -> CallFn:
    """The denoiser as the block calls it, on a batch: positional inputs in the network's order,
    the timestep in the block's dtype, the block's output picked."""
    fixed = [t.name for t in spec.inputs if not t.shape or not isinstance(t.shape[0], str)]
    if fixed:
        raise BadInputError(
            f"--denoise-steps: {where}: network {spec.name!r} input(s) {fixed} have no batch "
            "axis (a fixed first dimension); step distillation trains on batches: give them a "
            "named first axis such as 'batch'"
        )
    order, pick_out = spec.input_names, spec.output_names.index(block.output)
    integer = block.timestep_dtype == "int64"
    rest = tuple(block.timestep_shape[1:])

    def call(net: nn.Module, x: torch.Tensor, t: float, cond: dict[str, torch.Tensor]) -> Any:
        value = int(t) if integer else float(t)
        dtype = torch.int64 if integer else torch.float32
        ts = torch.full((x.shape[0], *rest), value, dtype=dtype, device=x.device)
        feeds = {**cond, block.sample: x, block.timestep: ts}
        out = net(*[feeds[n] for n in order])
        return out[pick_out] if isinstance(out, tuple | list) else out

    return call
