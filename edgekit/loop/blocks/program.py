"""The declared tick: a loop program made of blocks, given as data.

A user's model declares its tick in its spec (a factory returns it; a model card gives it for
an ONNX file). It is stored in every artifact's manifest as the ``tick`` program's params, so
``bench``, ``eval`` and the robot rebuild it without the user's code and without torch::

    {"observation": [{"name": "state", "shape": [11]}],
     "blocks": [
        {"block": "normalize", "input": "state", "mean": [...], "std": [...]},
        {"block": "history", "input": "state", "length": 2, "output": "states"},
        {"block": "denoise", "network": "unet", "shape": [16, 4], "inputs": {"cond": "states"},
         "scheduler": {"_class_name": "DDIMScheduler", ...}, "num_inference_steps": 16},
        {"block": "unnormalize", "input": "actions", "min": [...], "max": [...]},
        {"block": "chunk", "input": "actions", "execute": 8}],
     "outputs": ["action"]}

Blocks run in order each tick; see ``host.py``, ``calls.py`` (call, denoise, rerank) and
``decode.py`` (autoregressive token decoding, OpenVLA's action bins) for what each does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgekit.errors import BadInputError
from edgekit.loop.blocks.base import Block, BlockError
from edgekit.loop.blocks.calls import Call, Denoise, Rerank
from edgekit.loop.blocks.decode import Decode
from edgekit.loop.blocks.host import Chunk, History, Normalize, Recurrent, Unnormalize
from edgekit.loop.program import Arrays, LoopProgram, TickContext, register_program
from edgekit.spec import NetworkSpec, TensorSpec

BLOCK_KINDS = (
    "normalize", "unnormalize", "history", "recurrent", "chunk", "call", "denoise", "decode",
    "rerank",
)  # fmt: skip
AnyBlock = Annotated[
    Normalize | Unnormalize | History | Recurrent | Chunk | Call | Denoise | Decode | Rerank,
    Field(discriminator="block"),
]


class TickDeclaration(BaseModel):
    """The observation the robot hands over (batch-free), the blocks, and what the tick
    returns. ``num_inference_steps``, when set, applies to every denoise block (so that
    ``--loop num_inference_steps=N`` works on a declared tick as on the zoo's). ``command``:
    what the ``action`` output drives on a robot (``edgekit eval``: joint torques, or joint
    positions the robot's joint controller tracks)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    observation: list[dict[str, Any]] = Field(min_length=1)
    blocks: list[AnyBlock] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    num_inference_steps: int | None = Field(default=None, ge=1)
    command: Literal["torque", "joint_position"] = "torque"  # what `action` drives (eval)


def declare_tick(
    params: dict[str, Any], networks: dict[str, NetworkSpec] | None = None, where: str = "tick"
) -> TickDeclaration:
    """Validate a declared tick; with the model's ``networks``, also check every block's
    tensors against their io specs. One :class:`BadInputError` line on any problem."""
    params = dict(params)
    steps = params.get("num_inference_steps")
    if steps is not None and isinstance(params.get("blocks"), list):
        params["blocks"] = [
            {**b, "num_inference_steps": steps}
            if isinstance(b, dict) and b.get("block") == "denoise" else b
            for b in params["blocks"]
        ]  # fmt: skip
    _known_blocks(params, where)
    try:
        decl = TickDeclaration.model_validate(params)
        observed = {TensorSpec.from_dict(o).name for o in decl.observation}
    except ValidationError as e:
        raise BadInputError(f"{where}.{_location(e)}") from None
    except (TypeError, KeyError, ValueError) as e:
        raise BadInputError(f"{where}.observation: {e}") from None
    try:
        _check_flow(decl, observed, networks, where)
    except BlockError as e:
        raise BadInputError(str(e)) from None
    return decl


def _known_blocks(params: dict[str, Any], where: str) -> None:
    for i, b in enumerate(params.get("blocks") or []):
        kind = b.get("block") if isinstance(b, dict) else None
        if kind not in BLOCK_KINDS:
            raise BadInputError(
                f"{where}.blocks[{i}].block: unknown block {kind!r} "
                f"(blocks: {', '.join(BLOCK_KINDS)})"
            )


def _location(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    # drop the union tags pydantic adds (the block kind, "list[CacheTensor]"...)
    parts = [
        p for p in err["loc"] if p not in BLOCK_KINDS and not (isinstance(p, str) and "[" in p)
    ]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"])
    return f"{loc}: {msg.removeprefix('Value error, ')}"


def _check_flow(
    decl: TickDeclaration,
    observed: set[str],
    networks: dict[str, NetworkSpec] | None,
    where: str,
) -> None:
    have = set(observed) | {b.output for b in decl.blocks if isinstance(b, Recurrent)}
    chunks = [i for i, b in enumerate(decl.blocks) if isinstance(b, Chunk)]
    if len(chunks) > 1:
        raise BlockError(f"{where}.blocks[{chunks[1]}]: one chunk queue per tick")
    for i, b in enumerate(decl.blocks):
        at = f"{where}.blocks[{i}]"
        if networks is not None:
            b.check(networks, at)
        for name in b.reads():
            if name not in have:
                raise BlockError(
                    f"{at}: reads {name!r}, which no observation or earlier block makes "
                    f"(so far: {', '.join(sorted(have))})"
                )
        have |= set(b.writes())
    for name in decl.outputs:
        if name not in have:
            raise BlockError(f"{where}.outputs: {name!r} is made by no block")
    if chunks:
        _check_queued_ticks(decl, set(observed), where)


def _check_queued_ticks(decl: TickDeclaration, every_tick: set[str], where: str) -> None:
    """With a chunk queue, a tick that executes from the queue skips the planning blocks before
    it (those calling a network, or reading what one made): what only they make is missing then,
    so no later block and no output may need it (as :meth:`TickProgram.tick` runs them)."""
    have, made_by = set(every_tick), {}
    at_chunk = next(i for i, b in enumerate(decl.blocks) if isinstance(b, Chunk))
    for i, b in enumerate(decl.blocks):
        planning = i < at_chunk and (b.calls_network or any(r not in have for r in b.reads()))
        if planning:
            made_by.update({n: i for n in b.writes() if n not in have})
            continue
        for r in b.reads():
            if r not in have and i > at_chunk:
                raise BlockError(
                    f"{where}.blocks[{i}]: reads {r!r}, which only planning ticks make "
                    f"(blocks[{made_by.get(r, '?')}], before the chunk queue); read the queue's "
                    "output instead"
                )
        have |= set(b.writes())
    for name in decl.outputs:
        if name not in have:
            raise BlockError(
                f"{where}.outputs: {name!r} is made only on planning ticks (blocks["
                f"{made_by.get(name, '?')}], before the chunk queue), so ticks that execute from "
                "the queue have none; output the queue's output or what a block after it makes"
            )


@register_program
class TickProgram(LoopProgram):
    """A declared tick (see the module docstring); params are a :class:`TickDeclaration`."""

    name = "tick"

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.decl = declare_tick(params)
        self.blocks: list[Block] = list(self.decl.blocks)
        self.chunk = next((i for i, b in enumerate(self.blocks) if isinstance(b, Chunk)), None)
        stages = [b.host_stage for b in self.blocks if b.host_stage]
        self.host_stages = tuple(dict.fromkeys(stages))  # type: ignore[misc]
        self._taps: dict[int, list[Arrays]] = {}
        self.reset(0)

    def tap(self, index: int) -> list[Arrays]:
        """From now on, a copy of what block ``index`` writes each time it runs (a later block
        may overwrite the names in place, as unnormalize does): the list they go to."""
        return self._taps.setdefault(index, [])

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec.from_dict(o) for o in self.decl.observation)

    def calls_per_tick(self) -> dict[str, int]:
        """Calls on a tick that runs the networks (with a chunk queue: a planning tick)."""
        out: dict[str, int] = {}
        for b in self.blocks:
            for k, v in b.calls().items():
                out[k] = out.get(k, 0) + v
        return out

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        for b in self.blocks:
            b.reset()

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        state: Arrays = dict(obs)
        queued = self.chunk is not None and getattr(self.blocks[self.chunk], "has_queued", False)
        for i, b in enumerate(self.blocks):
            planning = b.calls_network or any(r not in state for r in b.reads())
            if queued and i < (self.chunk or 0) and planning:
                continue  # executing from the chunk queue: no planning this tick
            b.run(ctx, state, self.rng)
            if i in self._taps:
                self._taps[i].append({n: np.array(state[n]) for n in b.writes()})
        for b in self.blocks:
            b.end_tick(state)
        return {k: np.asarray(state[k]) for k in self.decl.outputs}
