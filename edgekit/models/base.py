"""The zoo entry contract: one class per stack-model kind.

An entry owns the presets (typed config dataclasses), builds the torch model with fixed-seed
initialisation, and describes the model's export and loop contract as a :class:`ModelSpec`.
Modelling code lives in ``edgekit/models/<kind>/modeling.py``; the entry only wires it to
the contract.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from edgekit.errors import ModelLoadError
from edgekit.registry import Registry
from edgekit.spec import ModelSpec


class StackModel(nn.Module):
    """A zoo model: a container of the networks its loop program calls.

    Subclasses return ``{name: module}`` from :meth:`networks`; each module's ``forward`` takes
    the network's inputs positionally, in the order of its :class:`NetworkSpec`, and returns
    its outputs (a tensor or a tuple) in that order. Networks may share submodules.
    """

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError


class ZooEntry(ABC):
    """One model kind of the zoo."""

    kind: ClassVar[str]
    category: ClassVar[str]  # world model, VLA, reward model, diffusion policy, ...
    summary: ClassVar[str]  # one line: which published design it follows
    presets: ClassVar[dict[str, Any]]  # preset name -> config dataclass instance
    seed: ClassVar[int] = 0

    def config(self, preset: str) -> Any:
        if preset not in self.presets:
            known = ", ".join(self.presets)
            raise ModelLoadError(f"zoo:{self.kind}: unknown preset {preset!r}; known: {known}")
        return self.presets[preset]

    def build(self, cfg: Any) -> StackModel:
        """Build the model with fixed-seed weights, without touching the global RNG."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.make(cfg)
        return model.eval()

    @abstractmethod
    def make(self, cfg: Any) -> StackModel:
        """Construct the modules (initialisation happens under a fixed seed)."""

    @abstractmethod
    def spec(self, cfg: Any, preset: str) -> ModelSpec:
        """Describe networks, loop program(s), tolerance and loop rate for this config."""

    def scaled(self, cfg: Any, width: float, depth: float) -> Any:
        """The config of a smaller (or larger) student of the same kind: hidden widths times
        `width`, layer/block counts times `depth`. Every tensor that crosses between networks
        or to the robot (observation/action sizes, vocabularies, the state passed between
        networks) is kept, so the student has the same network io contract and runs under the
        same loop program.
        """
        check_factors(width, depth)
        raise NotImplementedError(f"zoo:{self.kind}: no student scaling")


def _check_factor(name: str, factor: float) -> None:
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"{name} factor must be a finite number > 0, got {factor!r}")


def check_factors(width: float, depth: float) -> None:
    """Raise ValueError unless both student scale factors are finite and > 0."""
    _check_factor("width", width)
    _check_factor("depth", depth)


def scale_width(n: int, factor: float, multiple: int = 8) -> int:
    """``n * factor`` rounded to the nearest multiple of ``multiple`` (ties to even, as
    :func:`round`), at least ``multiple``. Factors above 1 are allowed (a larger student)."""
    _check_factor("width", factor)
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    return max(multiple, multiple * round(n * factor / multiple))


def scale_depth(n: int, factor: float) -> int:
    """``n * factor`` rounded (ties to even, as :func:`round`), at least 1."""
    _check_factor("depth", factor)
    return max(1, round(n * factor))


def scale_hidden(
    hidden: tuple[int, ...], width: float, depth: float, multiple: int = 8
) -> tuple[int, ...]:
    """An MLP's hidden sizes: each times ``width``, the number of layers times ``depth``.

    Layers are dropped (or repeated) evenly along the stack, so a (512, 256, 128) funnel keeps
    its first and last size at depth 0.5: (512, 128) before the width factor.
    """
    if not hidden:
        return hidden
    n, k = len(hidden), scale_depth(len(hidden), depth)
    keep = [0] if k == 1 else [math.floor(i * (n - 1) / (k - 1) + 0.5) for i in range(k)]
    return tuple(scale_width(hidden[i], width, multiple) for i in keep)


def config_dict(cfg: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    return dict(cfg)


ZOO: Registry[ZooEntry] = Registry("zoo model")


def register(entry_cls: type[ZooEntry]) -> type[ZooEntry]:
    ZOO.add(entry_cls.kind, entry_cls())
    return entry_cls
