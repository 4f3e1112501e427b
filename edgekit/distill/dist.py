"""torch.distributed for ``edgekit distill``: the same command, one process or many.

Under ``torchrun --nproc_per_node N`` (which sets ``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...)
:func:`init` joins the process group (gloo on CPU, nccl when CUDA is present) and the trainer
wraps the objective in DistributedDataParallel. Every rank draws the same global batch from the
same seeded generator and trains on its own contiguous slice of it, so DDP's gradient average
is the gradient of the global batch and N processes train the same student as one (up to the
order of floating-point sums). Only rank 0 writes checkpoints and artifacts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    backend: str = ""
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of a global batch of ``n`` rows."""
        if n % self.world:
            raise ValueError(f"batch size {n} does not divide over {self.world} processes")
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, value: float) -> float:
        """Average a scalar over ranks (for reporting the global loss)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world


def init() -> DistContext:
    """Join the process group when launched by torchrun; a single-process context otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return single()
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    device = "cpu"
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), backend, device)


def single() -> DistContext:
    """One process: on the GPU when there is one, else the CPU."""
    return DistContext(device="cuda" if torch.cuda.is_available() else "cpu")


def shutdown(ctx: DistContext) -> None:
    if ctx.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
