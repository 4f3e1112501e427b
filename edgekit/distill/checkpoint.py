"""Training checkpoints without pickle: tensors in safetensors, the rest in JSON.

A checkpoint folder holds ``state.safetensors`` (trainable weights, their EMA, the AdamW
moments, the data generator's state) and ``state.json`` (step, loss history, optimizer
hyper-parameters, and the hash of every setting that shapes training, so ``--resume`` refuses a
checkpoint of a different run). It is written to a temporary sibling and renamed into place:
an interruption leaves the last complete checkpoint and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import BadInputError

if TYPE_CHECKING:  # torch is imported where tensors are made: check_resume runs before it loads
    import torch

TENSORS = "state.safetensors"
META = "state.json"


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped."""

    step: int
    params: dict[str, torch.Tensor]  # trainable parameter name -> value
    ema: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch optimizer state_dict
    generator: torch.Tensor  # torch.Generator.get_state()
    history: list[float] = field(default_factory=list)


def save(folder: Path, state: TrainState, settings_hash: str) -> None:
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {"generator": state.generator}
    tensors.update({f"param.{k}": v for k, v in state.params.items()})
    tensors.update({f"ema.{k}": v for k, v in state.ema.items()})
    opt_state = state.optimizer["state"]
    scalars: dict[str, dict[str, float]] = {}
    for idx, entry in opt_state.items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                tensors[f"opt.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = float(value)
    meta = {
        "settings_hash": settings_hash,
        "step": state.step,
        "history": state.history,
        "param_groups": state.optimizer["param_groups"],
        "opt_scalars": scalars,
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / TENSORS)
        (tmp / META).write_text(json.dumps(meta) + "\n")
        old = None
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{os.getpid()}"
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(folder: Path, settings_hash: str) -> TrainState:
    """Read a checkpoint written by :func:`save` for the same settings."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / META).read_text())
        tensors = load_file(str(folder / TENSORS))
    except (OSError, ValueError, SafetensorError) as e:
        raise BadInputError(
            f"{folder}: unreadable checkpoint ({e}); delete it to start over"
        ) from None
    if meta.get("settings_hash") != settings_hash:
        raise BadInputError(
            f"{folder}: checkpoint is from a run with different settings (teacher, student, "
            "data or hyper-parameters); delete it or drop --resume to start over"
        )
    opt_state: dict[int, dict[str, Any]] = {}
    for idx, entry in meta["opt_scalars"].items():
        opt_state.setdefault(int(idx), {}).update(
            {k: torch.tensor(v, dtype=torch.float32) for k, v in entry.items()}
        )
    params, ema = {}, {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head == "param":
            params[rest] = value
        elif head == "ema":
            ema[rest] = value
        elif head == "opt":
            idx, _, name = rest.partition(".")
            opt_state.setdefault(int(idx), {})[name] = value
    return TrainState(
        step=int(meta["step"]),
        params=params,
        ema=ema,
        optimizer={"state": opt_state, "param_groups": meta["param_groups"]},
        generator=tensors["generator"],
        history=list(meta["history"]),
    )


def exists(folder: Path) -> bool:
    return (folder / META).is_file() and (folder / TENSORS).is_file()


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
    ckpt = checkpoint_dir(Path(out))
    if resume and not exists(ckpt):
        raise BadInputError(
            f"--resume: no checkpoint at {ckpt} to continue from; drop --resume to start afresh"
        )
    if not resume and ckpt.exists() and not force:
        raise BadInputError(
            f"{ckpt}: a checkpoint of an earlier, unfinished run exists; pass --resume to "
            "continue it, or --force to discard it and start over"
        )
