"""Typed settings of ``edgekit distill``, validated before any work starts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from edgekit.config import Budget, VerbConfig
from edgekit.validate import MAX_TICKS


class DistillConfig(VerbConfig):
    """What student to make and how to train it.

    Attributes:
        width: hidden widths of a derived student, as a fraction of the teacher's.
        depth: layer/block counts of a derived student, as a fraction of the teacher's.
        student: a model reference for the student instead of a derived one; with
            ``denoise_steps`` (a flow-matching VLA only) a smaller student, e.g. an earlier
            ``--width/--depth`` output, whose prefix and expert are both trained through the
            N-step sampler against the teacher's K-step chunks.
        denoise_steps: step distillation: network calls per tick of the student sampler (1-4).
        denoise_block: which denoise block of a declared tick to step-distil when it has
            several: its index in the tick's blocks or its ``result`` name.
        program: the teacher's loop program to distil (default: the model's default).
        loop: overrides of the teacher program's parameters (``--loop KEY=VALUE``), checked as
            bench checks them; a flow program refuses diffusion scheduler options.
        steps: optimiser steps.
        batch_size: rows per optimiser step (global: split over torchrun processes).
        lr, warmup, ema, grad_clip, weight_decay: AdamW peak learning rate (default 1e-3 for
            width/depth students, trained from a fresh init; 1e-4 for step students, which
            fine-tune the teacher's denoiser), linear warm-up steps then cosine decay, EMA decay
            cap, gradient-norm clip.
        jitter: Gaussian input jitter, as a fraction of each input's std (0: no augmentation).
        teacher_pool: step students: make the teacher's rollouts once for this many (noise,
            observation) rows and draw every batch from them (0: new rollouts every batch).
        feature_weight: weight of the FitNets feature hint (0: outputs only).
        holdout: fraction of the observations held out to measure fidelity.
        max_error: the fidelity gate (exit 1), an :class:`~edgekit.gates.ErrorBudget`: a number
            holds the headline error (whole-tick relative L2 for width/depth students; mean-abs
            action error in units of the action range for step students; for a declared tick,
            the denoise result's range) at most;
            ``token_agreement=0.95`` / ``choice_agreement=0.9`` the fraction of decoded tokens /
            reranker choices equal to the teacher's (at least).
        checkpoint_every: optimiser steps between checkpoints (0: none).
        latency_ticks: whole ticks timed for the teacher-vs-student latency check (0: skip).
        max_feeds: captured feeds kept per network (evenly subsampled).
        seed: every random choice (student init, batches, augmentation) derives from it.
    """

    stage: Literal["distill"] = "distill"
    width: float = Field(default=1.0, gt=0)
    depth: float = Field(default=1.0, gt=0)
    student: str | None = None
    denoise_steps: int | None = Field(default=None, ge=1)
    denoise_block: str | None = None
    program: str | None = None
    loop: dict[str, Any] | None = None
    steps: int = Field(default=300, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float | None = Field(default=None, gt=0)
    warmup: int = Field(default=20, ge=0)
    ema: float = Field(default=0.999, gt=0, lt=1)
    grad_clip: float = Field(default=1.0, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    jitter: float = Field(default=0.05, ge=0)
    teacher_pool: int = Field(default=0, ge=0)
    feature_weight: float = Field(default=0.1, ge=0)
    holdout: float = Field(default=0.25, gt=0, lt=1)
    max_error: Budget | None = None
    checkpoint_every: int = Field(default=100, ge=0)
    latency_ticks: int = Field(default=30, ge=0, le=MAX_TICKS)
    max_feeds: int = Field(default=256, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _one_kind_of_student(self) -> DistillConfig:
        if self.width > 1 or self.depth > 1:
            raise ValueError(
                f"--width {self.width} / --depth {self.depth}: a student is at most the "
                "teacher's size (factors in (0, 1])"
            )
        if self.denoise_steps is not None:
            if not 1 <= self.denoise_steps <= 4:
                raise ValueError(
                    f"--denoise-steps {self.denoise_steps}: a step-distilled student makes "
                    "1 to 4 denoiser calls"
                )
            if self.width != 1 or self.depth != 1:
                raise ValueError(
                    "--denoise-steps distils the sampler; make a narrower student with "
                    "--width/--depth first, then give it as --student (a flow-matching VLA)"
                )
        elif self.denoise_block is not None:
            raise ValueError("--denoise-block picks the block that --denoise-steps distils")
        elif self.teacher_pool:
            raise ValueError("--teacher-pool pools the sampler rollouts of --denoise-steps")
        elif self.student is None and self.width == 1 and self.depth == 1:
            raise ValueError(
                "nothing to distil: give --width/--depth < 1, --student MODEL, or --denoise-steps N"
            )
        if self.student is not None and (self.width != 1 or self.depth != 1):
            raise ValueError("--student and --width/--depth are exclusive")
        return self

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.mode == "steps" else 1e-3

    @property
    def mode(self) -> str:
        return "steps" if self.denoise_steps is not None else "outputs"

    def training_settings(self) -> dict[str, Any]:
        """The settings that shape the trained weights (for the checkpoint/resume hash)."""
        d = self.model_dump(mode="json")
        d["lr"] = self.learning_rate
        for k in ("stage", "max_error", "checkpoint_every", "latency_ticks"):
            d.pop(k)
        return d
