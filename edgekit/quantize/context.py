"""What a precision handler is given (:class:`Context`) and what it returns (:class:`Outcome`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.loop import LoopProgram
from edgekit.loop.capture import Feeds
from edgekit.loop.fidelity import FidelityRow
from edgekit.quantize.config import QuantizeConfig
from edgekit.runtimes import OrtRuntime
from edgekit.targets import Target


@dataclass
class Context:
    config: QuantizeConfig
    target: Target
    fp32_files: dict[str, Path]
    fp32: OrtRuntime
    feeds: Feeds
    holdout_feeds: Feeds
    fidelity: Callable[[Any], list[FidelityRow]]
    work: Path
    threads: int
    program: LoopProgram | None = None  # the default loop program, for the latency check


@dataclass
class Outcome:
    files: dict[str, Path]
    scheme: str
    fidelity: list[FidelityRow]
    measured_on: str
    scheme_detail: dict[str, Any] = field(default_factory=dict)
    kept_float: list[str] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
