"""Process-group setup for one process or many under ``torchrun`` (PyTorch DDP)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """How this process runs a step: its rank, its device, and the run's ``--force``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    force: bool = False  # rerun finished steps whose config or inputs changed
    adopt: bool = False  # keep outputs that predate fingerprints, recording the current one

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(
    device: str = "auto", threads: int | str = "auto", force: bool = False, adopt: bool = False
) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment (if any).

    gloo on CPU, nccl on CUDA. CPU threads are split between local processes so
    two ranks on a 2-core machine do not fight over the same cores; ``threads``
    forces a count (1 is much faster on a machine other jobs already load:
    oversubscribed OpenMP threads wait for each other at every barrier).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device; use cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        if threads == "auto":
            threads = max(1, (os.cpu_count() or 1) // local_world)
        torch.set_num_threads(int(threads))
    if world_size > 1 and not dist.is_initialized():
        # Ranks wait for each other at step ends (a resumed labelling run may leave one
        # rank a few shards behind): an hour, not NCCL's default 10 minutes.
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=1)
        )
    return DistContext(rank, world_size, local_rank, torch_device, force, adopt)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.distributed:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= ctx.world_size
    return value


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise sum over ranks (a copy; the input is left alone)."""
    values = values.detach().clone()
    if ctx.distributed:
        dist.all_reduce(values)
    return values


def all_gather_objects(value: Any, ctx: DistContext) -> list[Any]:
    """``value`` of every rank, in rank order (picklable objects)."""
    if not ctx.distributed:
        return [value]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, value)
    return gathered
