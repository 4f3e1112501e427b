"""The zoo entry contract: one class per stack-model kind.

An entry owns the presets (typed config dataclasses), builds the torch model with fixed-seed
initialisation, and describes the model's export and loop contract as a :class:`ModelSpec`.
Modelling code lives in ``edgekit/nets``; the entry only wires it to the contract.
"""

from __future__ import annotations

import dataclasses
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


def config_dict(cfg: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    return dict(cfg)


ZOO: Registry[ZooEntry] = Registry("zoo model")


def register(entry_cls: type[ZooEntry]) -> type[ZooEntry]:
    ZOO.add(entry_cls.kind, entry_cls())
    return entry_cls
