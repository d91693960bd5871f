"""Process-group setup from torchrun's environment, and the few collectives the trainer needs.

Run under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT`` set) the trainer joins a process group — NCCL on GPUs, gloo on CPUs; without
those variables it is a single process and every collective is the identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from align3r.errors import InputError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun process group if there is one; pick this process's device.

    ``device``: ``"auto"`` (CUDA if available, else CPU), ``"cpu"`` or ``"cuda"``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but no CUDA device is visible")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://",
                                rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_floats(values: list[float]) -> list[float]:
    """Concatenate every rank's list of floats (rank order)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    gathered: list[list[float] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(values))
    return [v for part in gathered for v in part]


def mean_across_ranks(value: float) -> float:
    """Average a float over all ranks."""
    values = all_gather_floats([value])
    return sum(values) / len(values)


def means_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average every value of ``values`` over all ranks (one gather; same keys on every rank)."""
    keys = sorted(values)
    gathered = all_gather_floats([float(values[k]) for k in keys])
    ranks = len(gathered) // len(keys) if keys else 1
    means = {k: sum(gathered[r * len(keys) + i] for r in range(ranks)) / ranks for i, k in enumerate(keys)}
    return {k: means[k] for k in values}


def any_across_ranks(flag: torch.Tensor) -> bool:
    """Whether the 0-d boolean ``flag`` holds on any rank (MAX all-reduce of one integer).

    A collective: every rank must call it at the same point. It lets all ranks take the same
    branch, e.g. raise together on a non-finite loss instead of leaving the others waiting in the
    gradient all-reduce until the process-group timeout.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return bool(flag)
    value = flag.detach().reshape(1).to(torch.int32)  # on the loss's device, as NCCL needs
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
