"""Typed settings of ``edgekit distill``, validated before any work starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from edgekit.errors import BadInputError
from edgekit.validate import tick_count


@dataclass(frozen=True)
class DistillConfig:
    """What student to make and how to train it.

    Attributes:
        width: hidden widths of a derived student, as a fraction of the teacher's.
        depth: layer/block counts of a derived student, as a fraction of the teacher's.
        student: a model reference for the student instead of a derived one.
        denoise_steps: step distillation: network calls per tick of the student sampler (1-4).
        program: the teacher's loop program to distil (default: the model's default).
        steps: optimiser steps.
        batch_size: rows per optimiser step (global: split over torchrun processes).
        lr, warmup, ema, grad_clip, weight_decay: AdamW peak learning rate (default 1e-3 for
            width/depth students, trained from a fresh init; 1e-4 for step students, which
            fine-tune the teacher's denoiser), linear warm-up steps then cosine decay, EMA decay
            cap, gradient-norm clip.
        jitter: Gaussian input jitter, as a fraction of each input's std (0: no augmentation).
        feature_weight: weight of the FitNets feature hint (0: outputs only).
        holdout: fraction of the observations held out to measure fidelity.
        max_error: gate on the headline error (exit 1): whole-tick relative L2 for width/depth
            students; mean-abs action error in units of the action range for step students.
        checkpoint_every: optimiser steps between checkpoints (0: none).
        latency_ticks: whole ticks timed for the teacher-vs-student latency check (0: skip).
        max_feeds: captured feeds kept per network (evenly subsampled).
        seed: every random choice (student init, batches, augmentation) derives from it.
    """

    width: float = 1.0
    depth: float = 1.0
    student: str | None = None
    denoise_steps: int | None = None
    program: str | None = None
    steps: int = 300
    batch_size: int = 32
    lr: float | None = None
    warmup: int = 20
    ema: float = 0.999
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    jitter: float = 0.05
    feature_weight: float = 0.1
    holdout: float = 0.25
    max_error: float | None = None
    checkpoint_every: int = 100
    latency_ticks: int = 30
    max_feeds: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "depth", "lr", "ema", "grad_clip"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (math.isfinite(value) and value > 0):
                raise BadInputError(f"--{name.replace('_', '-')} must be > 0 (got {value})")
        if self.width > 1 or self.depth > 1:
            raise BadInputError(
                f"--width {self.width} / --depth {self.depth}: a student is at most the "
                "teacher's size (factors in (0, 1])"
            )
        if self.ema >= 1:
            raise BadInputError(f"ema decay must be < 1 (got {self.ema})")
        if self.steps < 1 or self.batch_size < 1:
            raise BadInputError("--steps and --batch-size must be >= 1")
        tick_count(self.latency_ticks, "--latency-ticks")
        if self.checkpoint_every < 0:
            raise BadInputError(f"--checkpoint-every must be >= 0 (got {self.checkpoint_every})")
        if self.warmup < 0:
            raise BadInputError(f"warm-up steps must be >= 0 (got {self.warmup})")
        if self.jitter < 0 or self.feature_weight < 0 or self.weight_decay < 0:
            raise BadInputError("jitter, feature weight and weight decay must be >= 0")
        if not 0 < self.holdout < 1:
            raise BadInputError(f"holdout fraction must be in (0, 1) (got {self.holdout})")
        if self.max_error is not None and not self.max_error > 0:
            raise BadInputError(f"--max-error must be > 0 (got {self.max_error})")
        if self.denoise_steps is not None:
            if not 1 <= self.denoise_steps <= 4:
                raise BadInputError(
                    f"--denoise-steps {self.denoise_steps}: a step-distilled student makes "
                    "1 to 4 denoiser calls"
                )
            if self.student is not None or self.width != 1 or self.depth != 1:
                raise BadInputError(
                    "--denoise-steps distils the sampler with the teacher's own denoiser; "
                    "run width/depth (--width/--depth/--student) distillation separately"
                )
        elif self.student is None and self.width == 1 and self.depth == 1:
            raise BadInputError(
                "nothing to distil: give --width/--depth < 1, --student MODEL, or --denoise-steps N"
            )
        if self.student is not None and (self.width != 1 or self.depth != 1):
            raise BadInputError("--student and --width/--depth are exclusive")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.mode == "steps" else 1e-3

    @property
    def mode(self) -> str:
        return "steps" if self.denoise_steps is not None else "outputs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def training_settings(self) -> dict[str, Any]:
        """The settings that shape the trained weights (for the checkpoint/resume hash)."""
        d = self.to_dict()
        d["lr"] = self.learning_rate
        for k in ("max_error", "checkpoint_every", "latency_ticks"):
            d.pop(k)
        return d
